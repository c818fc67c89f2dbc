// Sending one message: HTTP(S) POST for the web notifiers (and the requests that follow it,
// in order), append+fsync for files.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include "notifier.h"
#include "vigil/exporters/http_client.h"

namespace vigil::exporters {

namespace {

Delivery appendToFile(const OutgoingMessage& m) {
  const int fd = ::open(m.target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return {DeliveryResult::kRetry, 0, "cannot open " + m.target + ": " + std::strerror(errno)};
  }
  const Status st = writeAndSync(fd, m.body + "\n", m.target);
  ::close(fd);
  if (!st.isOk()) {
    return {DeliveryResult::kRetry, 0, st.message()};
  }
  return {DeliveryResult::kDelivered, 0, ""};
}

// One request of a message, on `client`; `headers` are the message's own (authorization and
// the like).
Delivery sendRequest(HttpClient& client, const std::string& method, const std::string& path,
                     const std::string& body, const HttpHeaders& headers) {
  auto res = client.request(method, path, headers, body, "application/json");
  if (!res) {
    if (res.status().code() == StatusCode::kInvalidArgument) {
      return {DeliveryResult::kRejected, 0, res.status().message()};
    }
    return {DeliveryResult::kRetry, 0, res.status().message()};
  }
  Delivery d;
  d.status = res->status;
  d.detail = res->body.substr(0, 512);
  if (res->status >= 200 && res->status < 300) {
    d.result = DeliveryResult::kDelivered;
  } else if (res->status >= 500 || res->status == 429) {
    d.result = DeliveryResult::kRetry;
    d.retry_after = parseRetryAfter(res->retry_after);
  } else {
    d.result = DeliveryResult::kRejected;
  }
  return d;
}

}  // namespace

Delivery sendMessage(const OutgoingMessage& m, std::chrono::milliseconds timeout) {
  if (m.notifier == "file") {
    return appendToFile(m);
  }
  HttpHeaders headers{{"User-Agent", "vigil"}};
  if (!m.id.empty()) {
    headers.emplace_back("Idempotency-Key", m.id);
  }
  if (Status st = addConfiguredHeaders(m.http, headers); !st.isOk()) {
    // The credentials file may be back by the next attempt (a secret being rotated).
    return {DeliveryResult::kRetry, 0, st.message()};
  }
  // The timeout bounds each whole exchange: a receiver that trickles its answer does not hold
  // the worker. The follow-ups to the same origin reuse the connection (one TLS handshake).
  const UrlParts url = splitUrl(m.target);
  HttpClient client(url.origin, m.http, timeout);
  Delivery d = sendRequest(client, "POST", url.path, m.body, headers);
  for (const auto& f : m.then) {
    if (d.result != DeliveryResult::kDelivered) {
      break;
    }
    const UrlParts next = splitUrl(f.target);
    if (next.origin == url.origin) {
      d = sendRequest(client, f.method, next.path, f.body, headers);
    } else {
      HttpClient elsewhere(next.origin, m.http, timeout);
      d = sendRequest(elsewhere, f.method, next.path, f.body, headers);
    }
  }
  return d;
}

}  // namespace vigil::exporters
