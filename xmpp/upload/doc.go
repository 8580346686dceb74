// Package upload implements XEP-0363 HTTP File Upload (version 1.1.0,
// namespace urn:xmpp:http:upload:0): a client asks its host's upload
// service (a Component, one per host, at upload.<host>) for a slot, PUTs
// the file over HTTPS to the slot's URL and shares the GET URL, which
// anyone who knows it can fetch.
//
// # The XMPP side (Component)
//
//   - disco#info (XEP-0030): identity store/file, the features disco#info
//     and urn:xmpp:http:upload:0, and the XEP-0128 extended form with the
//     max-file-size field (XEP-0363 "Discovering Support"); disco#items
//     is empty. Sections are cited by title: their numbers differ
//     between versions 1.1.0 and 1.2.0.
//   - A slot request ("Requesting a slot") is answered for accounts of the component's own
//     host only (others: forbidden, type auth, as the XEP's example for
//     refused users in "Error conditions"). A missing or empty filename, a size that is not a
//     non-negative decimal number, or an invalid content-type is
//     bad-request; a size above max-file-size is not-acceptable with
//     <file-too-large/> and <max-file-size/> ("Error conditions"); a request
//     beyond the account's quota, which counts its files and its unused
//     slots, is resource-constraint (type wait, "Error conditions":
//     "exceeding a personal quota" is a temporary error). Each upload
//     counts at least store.UploadMinCharge bytes, so a quota also bounds
//     how many files an account keeps.
//   - The PUT and GET URLs are the same,
//     <base>/upload/<slot id>/<file name>: the slot id, 128 random bits,
//     is the capability, so the slot carries no <header/>. The file name
//     is sanitised (SanitizeName) and percent-encoded ("Requesting a slot": non-ASCII
//     characters MUST be percent-encoded).
//   - Other IQ requests get service-unavailable (RFC 6120 §8.4);
//     messages, presence, IQ results and errors are ignored, so an error
//     is never answered with one (RFC 6120 §8.3.1).
//
// # The HTTP side (Service.ServeHTTP, under /upload/ on the HTTPS listener)
//
//   - PUT stores the file of a reserved slot: the slot must be no older
//     than SlotLifetime ("Implementation Notes" recommend about 300 s; 410
//     Gone after) and
//     unused (409 Conflict for a used one, or one being uploaded, as
//     Prosody's mod_http_file_share answers an existing file); an
//     unknown id is 404. Content-Length must equal the requested size
//     ("Upload": "MUST reject"; 411 without one, 413 above it, 400 below it);
//     a declared content type must match the request's media type (400;
//     "Upload": SHOULD). The body goes to a temporary file in the upload
//     directory, is synced, then renamed to the slot id, and only then is
//     the slot marked uploaded; any failure removes the file and leaves
//     the slot unused. Success is 201 Created ("Upload").
//   - GET and HEAD serve an uploaded file (http.ServeContent: ranges and
//     conditional requests) with its content type (application/
//     octet-stream when none was given), nosniff, a Content-Security-
//     Policy that forbids active content and framing ("Security Considerations"),
//     and
//     Content-Disposition inline for images, audio and video, attachment
//     otherwise. Unknown ids, slots not yet uploaded and expired files
//     are 404.
//   - CORS for browser clients ("Implementation Notes"): every response carries
//     Access-Control-Allow-Origin: *; OPTIONS answers a preflight for GET,
//     HEAD, PUT and OPTIONS with the Content-Type header.
//
// # Retention
//
// Service.Cleanup, which the server runs every hour, deletes uploaded
// files older than Options.ExpireAfter (when set), slots never used
// within an hour (ReservedLifetime) and temporary files an interrupted
// upload left behind.
//
// The 1.2.0 upload purposes (urn:xmpp:http:upload:purpose:0) are not
// implemented nor advertised; every upload has the default purpose,
// "message".
package upload
