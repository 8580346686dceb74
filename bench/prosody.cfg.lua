-- Prosody for `make bench-compare` (bench/compare.sh). A template: the
-- script replaces @DIR@ (this instance's scratch directory), @C2S_PORT@,
-- @DOMAIN@ and @CERT@/@KEY@ and starts `prosody -F --config FILE` as the
-- prosody user. Nothing here touches Debian's /etc/prosody instance.
--
-- Features, to compare like with like (see docs/performance.md):
--   on:  c2s on one loopback port, STARTTLS offered but not required,
--        SCRAM-SHA-1 (internal_hashed storage), open in-band registration,
--        roster, presence, offline messages (autoloaded), carbons, blocking,
--        disco, ping, version, time, uptime, last activity, MUC.
--   off: rate limits (mod_limits not loaded, registration throttle off),
--        message archive (mod_mam, mod_muc_mam not loaded), stream
--        management, s2s, HTTP, admin socket.

daemonize = false
pidfile = "@DIR@/prosody.pid"
certificates = "@DIR@/certs"
data_path = "@DIR@/data"
log = {
	warn = "@DIR@/prosody.log";
}

-- The default backend of 0.12; named so that nobody falls back to select
-- (limited to 1024 descriptors).
network_backend = "epoll"
-- The accept queue is not a rate limit, but with the default of 128 a login
-- storm overflows it and clients wait for SYN retransmits (1 s); Switchboard
-- listens with the kernel's somaxconn (4096 here).
network_settings = {
	tcp_backlog = 4096;
}

interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }

-- No TLS requirement (the servers are compared on plain TCP; the STARTTLS
-- login row negotiates it voluntarily). SCRAM is used, so PLAIN stays
-- forbidden without TLS.
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = false
authentication = "internal_hashed"
-- PBKDF2 iterations of stored SCRAM credentials: 4096 like Switchboard and
-- ejabberd (Prosody's default is 10000). It costs only at registration and
-- in the client's first key derivation; logins use the stored keys.
default_iteration_count = 4096
storage = "internal"

-- Open registration. mod_register_limits throttles only when
-- min_seconds_between_registrations or registration_throttle_max is set
-- (neither is), and loopback is on its default allowlist anyway.
allow_registration = true

-- Same stanza size limit as Switchboard's default (256 KiB).
c2s_stanza_size_limit = 262144

modules_enabled = {
	"roster";
	"saslauth";
	"tls";
	"disco";
	"register";
	"carbons";
	"blocklist";
	"ping";
	"version";
	"time";
	"uptime";
	"lastactivity";
	-- Stream management (XEP-0198), in Debian's default configuration
	-- too; only the chat_sm scenario's clients enable it.
	"smacks";
}

-- s2s is autoloaded; nothing federates in the benchmark.
modules_disabled = {
	"s2s";
}

VirtualHost "@DOMAIN@"
	ssl = {
		certificate = "@CERT@";
		key = "@KEY@";
	}

Component "conference.@DOMAIN@" "muc"
	restrict_room_creation = false
	-- Prosody's default in-memory history (20 messages), no room archive.
	max_history_messages = 20
	ssl = {
		certificate = "@CERT@";
		key = "@KEY@";
	}
