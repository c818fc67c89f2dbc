#include "http_get.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "tcp_client.h"

namespace vigil::collectors {

namespace {

using Clock = std::chrono::steady_clock;

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;
};

Url parseUrl(const std::string& url) {
  Url u;
  u.tls = url.starts_with("https://");
  std::string rest = url.substr(u.tls ? 8 : 7);
  const auto slash = rest.find('/');
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  const auto bracket = hostport.rfind(']');
  const auto colon = hostport.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    u.host = hostport.substr(0, colon);
    u.port = hostport.substr(colon + 1);
  } else {
    u.host = hostport;
    u.port = u.tls ? "443" : "80";
  }
  return u;
}

// Drives a non-blocking OpenSSL call to completion or the deadline.
template <typename Op>
int sslRetry(SSL* ssl, int fd, Clock::time_point deadline, Op op) {
  while (true) {
    const int rc = op();
    if (rc > 0) {
      return rc;
    }
    const int err = SSL_get_error(ssl, rc);
    short events = 0;
    if (err == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      return rc;
    }
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, msLeft(deadline)) != 1) {
      return -1;
    }
  }
}

std::string sslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) {
    return "TLS handshake failed";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The TLS exchange on a connected socket: handshake (verified unless told otherwise), the
// chain's earliest expiry, the request, and the answer until the server closes.
Status exchangeTls(const HttpGetOptions& o, const std::string& host, int fd,
                   const std::string& request, Clock::time_point deadline, HttpGetResult& r,
                   std::string& response, Clock::time_point& sent, Clock::time_point& first_byte) {
  const auto t = Clock::now();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) {
    return Status(StatusCode::kInternal, "cannot create a TLS context");
  }
  if (o.ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(ctx.get());
  } else if (SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr) != 1) {
    return Status(StatusCode::kUnavailable, "cannot load ca_file " + o.ca_file);
  }
  SSL_CTX_set_verify(ctx.get(), o.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                     nullptr);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  SSL_set_fd(ssl.get(), fd);
  in6_addr ip6{};
  in_addr ip4{};
  const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip4) == 1 ||
                     ::inet_pton(AF_INET6, host.c_str(), &ip6) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    SSL_set1_host(ssl.get(), host.c_str());
  }
  if (sslRetry(ssl.get(), fd, deadline, [&] { return SSL_connect(ssl.get()); }) <= 0) {
    const long verify = SSL_get_verify_result(ssl.get());
    return Status(StatusCode::kUnavailable,
                  verify != X509_V_OK
                      ? std::string("certificate: ") + X509_verify_cert_error_string(verify)
                      : sslError());
  }
  r.tls_handshake = secondsSince(t);
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get())) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      std::tm tm{};
      if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) == 1) {
        const double expiry = static_cast<double>(timegm(&tm));
        r.earliest_expiry = r.earliest_expiry == 0 ? expiry : std::min(r.earliest_expiry, expiry);
      }
    }
  }
  sent = Clock::now();
  if (sslRetry(ssl.get(), fd, deadline, [&] {
        return SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
      }) <= 0) {
    return Status(StatusCode::kUnavailable, "cannot send the request: " + sslError());
  }
  char buf[16384];
  bool first = true;
  while (true) {
    const int n =
        sslRetry(ssl.get(), fd, deadline, [&] { return SSL_read(ssl.get(), buf, sizeof buf); });
    if (n <= 0) {
      break;
    }
    if (first) {
      first_byte = Clock::now();
      first = false;
    }
    response.append(buf, static_cast<std::size_t>(n));
    if (response.size() > o.max_bytes) {
      return invalidArgument("answer larger than " + std::to_string(o.max_bytes) + " bytes");
    }
  }
  if (first) {
    return Status(StatusCode::kUnavailable, "no answer");
  }
  return Status::ok();
}

}  // namespace

HttpGetResult httpGet(const std::string& url, const HttpGetOptions& o, Clock::time_point deadline) {
  HttpGetResult r;
  const Url u = parseUrl(url);
  r.tls = u.tls;
  // Resolved on its own to time it (the connect resolves again, from the cache).
  auto t = Clock::now();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = u.host;
  if (host.size() > 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  if (::getaddrinfo(host.c_str(), u.port.c_str(), &hints, &found) != 0) {
    r.status = Status(StatusCode::kUnavailable, "cannot resolve " + host);
    return r;
  }
  ::freeaddrinfo(found);
  r.resolve = secondsSince(t);
  t = Clock::now();
  TcpClient c;
  if (Status st = c.connect(u.host + ":" + u.port, deadline); !st.isOk()) {
    r.status = st;
    return r;
  }
  r.connect = secondsSince(t);
  // HTTP/1.0: the server answers without chunked encoding and closes when done.
  std::string request = "GET " + u.path + " HTTP/1.0\r\nHost: " + u.host +
                        "\r\nUser-Agent: " + o.user_agent + "\r\nAccept: " + o.accept +
                        "\r\nConnection: close\r\n";
  for (const auto& [name, value] : o.headers) {
    request += name + ": " + value + "\r\n";
  }
  request += "\r\n";
  std::string response;
  Clock::time_point sent;
  Clock::time_point first_byte;
  if (u.tls) {
    r.status = exchangeTls(o, host, c.fd(), request, deadline, r, response, sent, first_byte);
  } else {
    sent = Clock::now();
    r.status = c.send(request, deadline);
    bool first = true;
    while (r.status.isOk()) {
      auto chunk = c.readSome(deadline);
      if (!chunk) {
        if (chunk.status().code() == StatusCode::kDeadlineExceeded) {
          r.status = chunk.status();
        }
        break;  // otherwise: closed by the server, the answer is complete
      }
      if (first) {
        first_byte = Clock::now();
        first = false;
      }
      response += *chunk;
      if (response.size() > o.max_bytes) {
        r.status = invalidArgument("answer larger than " + std::to_string(o.max_bytes) + " bytes");
      }
    }
    if (r.status.isOk() && first) {
      r.status = Status(StatusCode::kUnavailable, "no answer");
    }
  }
  if (!r.status.isOk()) {
    return r;
  }
  r.processing = std::chrono::duration<double>(first_byte - sent).count();
  r.transfer = secondsSince(first_byte);
  // "HTTP/1.1 200 OK"
  if (!response.starts_with("HTTP/") || response.find(' ') == std::string::npos) {
    r.status = invalidArgument("not an HTTP answer");
    return r;
  }
  r.code = std::atoi(response.c_str() + response.find(' ') + 1);
  const auto body_at = response.find("\r\n\r\n");
  if (body_at != std::string::npos) {
    r.body = response.substr(body_at + 4);
  }
  return r;
}

}  // namespace vigil::collectors
