// Sending one message: HTTP(S) POST for the web notifiers, append+fsync for files.
#include <fcntl.h>
#include <httplib.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <thread>

#include "../http/http_client.h"
#include "notifier.h"

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

}  // namespace

Delivery sendMessage(const OutgoingMessage& m, std::chrono::milliseconds timeout) {
  if (m.notifier == "file") {
    return appendToFile(m);
  }
  const UrlParts url = splitUrl(m.target);
  httplib::Client client(url.origin);
  if (!client.is_valid()) {
    return {DeliveryResult::kRejected, 0, "invalid URL " + m.target};
  }
  configureClient(client, m.http, timeout);
  httplib::Headers headers{{"User-Agent", "vigil"}};
  if (!m.id.empty()) {
    headers.emplace("Idempotency-Key", m.id);
  }
  if (Status st = addConfiguredHeaders(m.http, headers); !st.isOk()) {
    // The credentials file may be back by the next attempt (a secret being rotated).
    return {DeliveryResult::kRetry, 0, st.message()};
  }
  // httplib bounds each read and write, not the whole exchange: a receiver that trickles its
  // answer would hold the worker forever. A watchdog closes the socket at the deadline.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return done; })) {
      client.stop();
    }
  });
  auto res = client.Post(url.path, headers, m.body, "application/json");
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (!res) {
    std::string detail = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      detail += " (certificate not trusted; set tls_config.ca_file)";
    }
    return {DeliveryResult::kRetry, 0, detail};
  }
  Delivery d;
  d.status = res->status;
  d.detail = res->body.substr(0, 512);
  if (res->status >= 200 && res->status < 300) {
    d.result = DeliveryResult::kDelivered;
  } else if (res->status >= 500 || res->status == 429) {
    d.result = DeliveryResult::kRetry;
    d.retry_after = parseRetryAfter(res->get_header_value("Retry-After"));
  } else {
    d.result = DeliveryResult::kRejected;
  }
  return d;
}

}  // namespace vigil::exporters
