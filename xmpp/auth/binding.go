package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"hash"
)

const (
	exporterLabel = "EXPORTER-Channel-Binding" // RFC 9266 §2
	exporterLen   = 32
)

// ChannelBindings lists the channel binding types usable on tlsState, for
// advertisement with XEP-0440: tls-exporter on TLS 1.3, tls-unique on
// earlier versions, and tls-server-end-point when Options.ServerCertificate
// knows the certificate. It is empty without TLS or when no -PLUS mechanism
// is enabled.
func (s *Server) ChannelBindings(tlsState *tls.ConnectionState) []string {
	if !s.enabled[MechanismSCRAMSHA256Plus] && !s.enabled[MechanismSCRAMSHA1Plus] {
		return nil
	}
	return s.channelBindings(tlsState)
}

// advertisesPlus reports whether Mechanisms(tlsState) contains a -PLUS
// mechanism.
func (s *Server) advertisesPlus(tlsState *tls.ConnectionState) bool {
	return len(s.ChannelBindings(tlsState)) > 0
}

func (s *Server) channelBindings(tlsState *tls.ConnectionState) []string {
	var out []string
	for _, name := range [...]string{BindingTLSExporter, BindingTLSUnique, BindingTLSServerEndPoint} {
		if s.hasChannelBinding(tlsState, name) {
			out = append(out, name)
		}
	}
	return out
}

// hasChannelBinding reports whether channelBindingData would return data of
// type name, without deriving it (features are advertised on every login;
// the data is needed only by a -PLUS exchange).
func (s *Server) hasChannelBinding(tlsState *tls.ConnectionState, name string) bool {
	if tlsState == nil || !tlsState.HandshakeComplete {
		return false
	}
	switch name {
	case BindingTLSExporter:
		return tlsState.Version >= tls.VersionTLS13
	case BindingTLSUnique:
		return tlsState.Version < tls.VersionTLS13 && len(tlsState.TLSUnique) > 0
	case BindingTLSServerEndPoint:
		if s.serverCert == nil {
			return false
		}
		cert := s.serverCert(tlsState)
		return cert != nil && len(cert.Raw) > 0 && serverEndPointHash(cert.SignatureAlgorithm) != nil
	}
	return false
}

// channelBindingData returns the channel binding data of type name, or false
// if that type is not available on tlsState (hasChannelBinding decides).
func (s *Server) channelBindingData(tlsState *tls.ConnectionState, name string) ([]byte, bool) {
	if !s.hasChannelBinding(tlsState, name) {
		return nil, false
	}
	switch name {
	case BindingTLSExporter:
		// TLS 1.3 only: RFC 9266 §3 allows TLS 1.2 only with extended
		// master secret, and tls.ConnectionState does not tell whether
		// it was negotiated.
		b, err := tlsState.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
		if err != nil || len(b) != exporterLen {
			return nil, false
		}
		return b, true
	case BindingTLSUnique:
		// Before TLS 1.3 only (RFC 9266 §1); Go leaves TLSUnique empty
		// when it would be unsafe.
		return append([]byte(nil), tlsState.TLSUnique...), true
	case BindingTLSServerEndPoint:
		return serverEndPoint(s.serverCert(tlsState))
	}
	return nil, false
}

// serverEndPoint computes tls-server-end-point data (RFC 5929 §4.1): the hash
// of the DER certificate, with the hash of its signature algorithm, or
// SHA-256 if that is MD5 or SHA-1. It is undefined for signature algorithms
// without a single hash function (such as Ed25519).
func serverEndPoint(cert *x509.Certificate) ([]byte, bool) {
	if cert == nil || len(cert.Raw) == 0 {
		return nil, false
	}
	h := serverEndPointHash(cert.SignatureAlgorithm)
	if h == nil {
		return nil, false
	}
	return hashSum(h, cert.Raw), true
}

// serverEndPointHash is the hash tls-server-end-point uses for a
// certificate signed with alg, or nil.
func serverEndPointHash(alg x509.SignatureAlgorithm) func() hash.Hash {
	switch alg {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		return sha256.New
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		return sha512.New384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		return sha512.New
	}
	return nil
}
