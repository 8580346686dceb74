// Command switchboard runs the Switchboard XMPP server and administers it.
//
//	switchboard serve                      start with the embedded defaults
//	switchboard --config FILE serve        start from a TOML file
//	switchboard config check FILE          validate a configuration
//	switchboard user add alice@localhost   create an account
//	switchboard version
package main
