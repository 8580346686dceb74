package config_test

import (
	"fmt"

	"switchboard/xmpp/config"
)

func ExampleParse() {
	doc := []byte(`
[limits]
max_stanza_size = 65536
idle_timeout = "5m"

[[host]]
domain = "example.org"
admins = ["admin@example.org"]
`)
	c, err := config.Parse(doc, "switchboard.toml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Domains(), c.Limits.MaxStanzaSize, c.Limits.IdleTimeout.Duration())
	// Output: [example.org] 65536 5m0s
}

func ExampleParse_errors() {
	doc := []byte(`
[listen]
c2s = "foo"

[limits]
max_stanzasize = 10000
auth_timeout = 30
`)
	_, err := config.Parse(doc, "switchboard.toml")
	fmt.Println(err)
	// Output:
	// switchboard.toml:3: listen.c2s: invalid address "foo": missing port in address (want host:port, e.g. ":5222")
	// switchboard.toml:6: unknown key "limits.max_stanzasize" (did you mean "limits.max_stanza_size"?)
	// switchboard.toml:7: limits.auth_timeout: expected a duration string such as "30s", got integer 30
}
