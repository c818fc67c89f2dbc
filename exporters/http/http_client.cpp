#include "http_client.h"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

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

}  // namespace

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

UrlParts splitUrl(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  return {url.substr(0, path_start),
          path_start == std::string::npos ? "/" : url.substr(path_start)};
}

void configureClient(httplib::Client& client, const alerting::HttpClientConfig& http,
                     std::chrono::milliseconds timeout) {
  client.enable_server_certificate_verification(!http.insecure_skip_verify);
  client.set_ca_cert_path(http.ca_file.empty() ? "/etc/ssl/certs/ca-certificates.crt"
                                               : http.ca_file.c_str());
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  client.set_connection_timeout(secs.count(), usecs.count());
  client.set_read_timeout(secs.count(), usecs.count());
  client.set_write_timeout(secs.count(), usecs.count());
}

Status addConfiguredHeaders(const alerting::HttpClientConfig& http, httplib::Headers& headers) {
  for (const auto& [name, value] : http.headers) {
    headers.emplace(name, value);
  }
  auto auth = authorizationHeader(http);
  if (!auth) {
    return auth.status();
  }
  if (!auth->empty()) {
    headers.emplace("Authorization", *auth);
  }
  return Status::ok();
}

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

}  // namespace vigil::exporters
