package wire

import "testing"

func TestScanUnit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind UnitKind
		n    int
	}{
		{"", UnitSkip, 0},
		{"  \n<a/>", UnitSkip, 3},
		{"<?xml version='1.0'?><a/>", UnitSkip, 21},
		{"<?xml version", UnitSkip, 0},
		{"<stream:stream xmlns='jabber:client' id='a>b'>", UnitHeader, 46},
		{"<stream:stream id='x'", UnitSkip, 0},
		{"</stream:stream>", UnitStreamEnd, 16},
		{"<a/><b/>", UnitElement, 4},
		{"<a x='/>'><b>t</b><![CDATA[</a>]]></a>rest", UnitElement, 38},
		{"<a><b/>", UnitSkip, 0},
		{"<stream:features><x/></stream:features>", UnitElement, 39},
	} {
		kind, n := ScanUnit([]byte(tc.in))
		if kind != tc.kind || n != tc.n {
			t.Errorf("ScanUnit(%q) = %d, %d; want %d, %d", tc.in, kind, n, tc.kind, tc.n)
		}
	}
}

func TestInheritedDecl(t *testing.T) {
	for _, tc := range []struct {
		in   string
		at   int
		decl string
	}{
		{"<message to='a'><body/></message>", 8, declClient},
		{"<iq/>", 3, declClient},
		{"<iq xmlns='jabber:client'/>", 3, ""},
		{"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", 8, ""},
		{"<stream:features><bind xmlns='b'/></stream:features>", 16, declStream},
		{"<stream:error xmlns:stream='" + NSStream + "'/>", 13, ""},
		{"<sm:r xmlns:sm='urn:xmpp:sm:3'/>", 5, ""},
	} {
		at, decl := InheritedDecl([]byte(tc.in))
		if at != tc.at || decl != tc.decl {
			t.Errorf("InheritedDecl(%q) = %d, %q; want %d, %q", tc.in, at, decl, tc.at, tc.decl)
		}
	}
}
