// Sending one message: HTTP(S) POST for the web notifiers, append+fsync for files.
#include <fcntl.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <thread>

#include "notifier.h"

namespace vigil::exporters {

namespace {

Result<std::string> readSecret(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return invalidArgument("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.pop_back();
  }
  return s;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Retry-After: seconds, or an HTTP date.
std::chrono::milliseconds parseRetryAfter(const std::string& v) {
  if (v.empty()) {
    return std::chrono::milliseconds(0);
  }
  char* end = nullptr;
  const long secs = std::strtol(v.c_str(), &end, 10);
  if (end != v.c_str() && *end == '\0' && secs >= 0) {
    return std::chrono::seconds(secs);
  }
  std::tm tm{};
  if (strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
    const std::time_t at = timegm(&tm);
    const std::time_t now = std::time(nullptr);
    return std::chrono::seconds(at > now ? at - now : 0);
  }
  return std::chrono::milliseconds(0);
}

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

Result<std::string> authorizationHeader(const alerting::HttpClientConfig& http) {
  if (http.auth_type.empty()) {
    return std::string();
  }
  if (http.auth_type == "Basic") {
    std::string password = http.basic_password;
    if (!http.basic_password_file.empty()) {
      auto p = readSecret(http.basic_password_file);
      if (!p) {
        return p.status();
      }
      password = *p;
    }
    return "Basic " + base64(http.basic_username + ":" + password);
  }
  std::string credentials = http.credentials;
  if (!http.credentials_file.empty()) {
    auto c = readSecret(http.credentials_file);
    if (!c) {
      return c.status();
    }
    credentials = *c;
  }
  return http.auth_type + " " + credentials;
}

Delivery sendMessage(const OutgoingMessage& m, std::chrono::milliseconds timeout) {
  if (m.notifier == "file") {
    return appendToFile(m);
  }
  // scheme://host[:port], then the path.
  const std::size_t scheme_end = m.target.find("://");
  const std::size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : m.target.find('/', scheme_end + 3);
  const std::string origin = m.target.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : m.target.substr(path_start);
  httplib::Client client(origin);
  if (!client.is_valid()) {
    return {DeliveryResult::kRejected, 0, "invalid URL " + m.target};
  }
  client.enable_server_certificate_verification(!m.http.insecure_skip_verify);
  client.set_ca_cert_path(m.http.ca_file.empty() ? "/etc/ssl/certs/ca-certificates.crt"
                                                 : m.http.ca_file.c_str());
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  client.set_connection_timeout(secs.count(), usecs.count());
  client.set_read_timeout(secs.count(), usecs.count());
  client.set_write_timeout(secs.count(), usecs.count());
  httplib::Headers headers{{"User-Agent", "vigil"}};
  if (!m.id.empty()) {
    headers.emplace("Idempotency-Key", m.id);
  }
  for (const auto& [name, value] : m.http.headers) {
    headers.emplace(name, value);
  }
  auto auth = authorizationHeader(m.http);
  if (!auth) {
    // The credentials file may be back by the next attempt (a secret being rotated).
    return {DeliveryResult::kRetry, 0, auth.status().message()};
  }
  if (!auth->empty()) {
    headers.emplace("Authorization", *auth);
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
  auto res = client.Post(path, headers, m.body, "application/json");
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
