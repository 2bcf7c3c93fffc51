#pragma once
// Defences of `swapmoe serve` against browsers and oversized bodies (issue 15, items 2 and 4).
//
// Browsers: any web page may POST to a loopback server. A "simple" request (text/plain,
// form encoded) needs no CORS preflight, and DNS rebinding lets a page on evil.example reach
// 127.0.0.1 under its own name. So, before any route runs:
//   - Host must be an IP literal, "localhost" (or a name under .localhost), or a name given
//     with --allow-host; a rebinding attack always uses a DNS name of its own (421 otherwise).
//   - A request with an Origin header (every browser POST has one) is refused unless the
//     origin is listed with --allow-origin (403); CORS preflights (OPTIONS) are answered
//     only for those origins, whose responses then carry Access-Control-Allow-Origin.
//   - POST routes take only Content-Type application/json (415). Requests without Origin
//     that say nothing or a form type (curl -d, ollama's own examples) are not browsers and
//     are still accepted.
// Bodies: every POST body is read through a receiver that stops at the body limit, whatever
// the framing (Content-Length, chunked, or until close), and answers 413 at once; unknown
// POST paths and other methods are answered before any body byte is read.

#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

namespace swapmoe::server {

// True for hosts a DNS-rebinding page cannot use: IP literals (v4, [v6]), localhost and
// *.localhost, and `allowed` names ("*" allows any). `host` is the Host header, with or
// without :port.
bool host_allowed(const std::string& host, const std::vector<std::string>& allowed);

// True when `origin` (scheme://host[:port]) is in `allowed` ("*" allows any).
bool origin_allowed(const std::string& origin, const std::vector<std::string>& allowed);

// application/json, application/*+json, with or without parameters (charset=utf-8).
bool is_json_content_type(const std::string& content_type);

// Reads a body through `reader` into `out`, at most `limit` bytes. Returns false when the
// body is larger (reading stops at the limit) or the connection failed.
bool read_body_bounded(const httplib::ContentReader& reader, size_t limit, std::string& out, bool& too_large);

}  // namespace swapmoe::server
