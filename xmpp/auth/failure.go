package auth

// SASL failure conditions defined in RFC 6120 §6.5.
const (
	ConditionAborted              = "aborted"
	ConditionAccountDisabled      = "account-disabled"
	ConditionCredentialsExpired   = "credentials-expired"
	ConditionEncryptionRequired   = "encryption-required"
	ConditionIncorrectEncoding    = "incorrect-encoding"
	ConditionInvalidAuthzid       = "invalid-authzid"
	ConditionInvalidMechanism     = "invalid-mechanism"
	ConditionMalformedRequest     = "malformed-request"
	ConditionMechanismTooWeak     = "mechanism-too-weak"
	ConditionNotAuthorized        = "not-authorized"
	ConditionTemporaryAuthFailure = "temporary-auth-failure"
)

// Failure is a SASL failure. Every error returned by [Server.Start] and
// [Exchange.Step] wraps a *Failure; find it with errors.As, because internal
// errors (for example a failing credential store) are joined to a
// temporary-auth-failure so that they can be logged.
//
// Condition is one of the Condition* constants (RFC 6120 §6.5). Text is a
// short human-readable explanation that is safe to send to the peer; it never
// reveals whether a user exists.
type Failure struct {
	Condition string
	Text      string
}

// Error implements error.
func (f *Failure) Error() string {
	if f.Text == "" {
		return "auth: " + f.Condition
	}
	return "auth: " + f.Condition + ": " + f.Text
}

func fail(condition, text string) *Failure {
	return &Failure{Condition: condition, Text: text}
}

func malformed(text string) *Failure {
	return fail(ConditionMalformedRequest, text)
}

// notAuthorized is the answer for an unknown user and a wrong password alike.
func notAuthorized() *Failure {
	return fail(ConditionNotAuthorized, "")
}
