#pragma once
// One HTTP(S) GET with a deadline, timed by phase, for the collectors that fetch URLs (probes
// and scrapes). HTTP/1.0 with the connection closed after the answer, so no chunked encoding;
// https verified against the system's CAs or a given CA file, with the earliest expiry of the
// chain the server presented.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "vigil/status.h"

namespace vigil::collectors {

struct HttpGetOptions {
  std::string ca_file;
  bool insecure_skip_verify = false;
  std::size_t max_bytes = 1 << 20;  // answer (headers and body); more is an error
  std::string accept = "*/*";
  std::string user_agent = "vigil";
  std::vector<std::pair<std::string, std::string>> headers;  // more request headers
};

struct HttpGetResult {
  Status status;  // the transport: connected, answered, within limits
  int code = 0;   // the HTTP status
  std::string body;
  bool tls = false;
  double earliest_expiry = 0;  // Unix seconds; 0 without TLS
  double resolve = 0, connect = 0, tls_handshake = 0, processing = 0, transfer = 0;
};

HttpGetResult httpGet(const std::string& url, const HttpGetOptions& options,
                      std::chrono::steady_clock::time_point deadline);

}  // namespace vigil::collectors
