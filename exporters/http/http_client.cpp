#include "vigil/exporters/http_client.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>

#include "vigil/percent_encoding.h"

namespace vigil::exporters {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Origin {
  bool tls = false;
  std::string host;  // without the brackets of an IPv6 address
  std::string port;
  std::string authority;  // for the Host header: as written in the URL
};

Result<Origin> parseOrigin(const std::string& origin) {
  Origin o;
  std::string rest;
  if (origin.starts_with("http://")) {
    rest = origin.substr(7);
  } else if (origin.starts_with("https://")) {
    rest = origin.substr(8);
    o.tls = true;
  } else {
    return invalidArgument("invalid URL " + origin + ": the scheme must be http or https");
  }
  if (const std::size_t at = rest.find('@'); at != std::string::npos) {
    // Not echoed: the part before the @ is a password.
    return invalidArgument("invalid URL " + origin.substr(0, origin.find("://") + 3) + "..." +
                           rest.substr(at) +
                           ": credentials in a URL are not supported, set basic_auth instead");
  }
  o.authority = rest;
  std::string port;
  if (rest.starts_with('[')) {
    const std::size_t close = rest.find(']');
    if (close == std::string::npos) {
      return invalidArgument("invalid URL " + origin + ": unclosed [ in the host");
    }
    o.host = rest.substr(1, close - 1);
    const std::string after = rest.substr(close + 1);
    if (!after.empty() && after[0] != ':') {
      return invalidArgument("invalid URL " + origin + ": unexpected " + after);
    }
    port = after.empty() ? "" : after.substr(1);
  } else if (const std::size_t colon = rest.rfind(':'); colon != std::string::npos) {
    o.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    o.host = rest;
  }
  if (o.host.empty() || o.host.find_first_of("/?# ") != std::string::npos) {
    return invalidArgument("invalid URL " + origin + ": no usable host");
  }
  if (port.empty()) {
    port = o.tls ? "443" : "80";
  }
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return invalidArgument("invalid URL " + origin + ": bad port " + port);
  }
  o.port = port;
  return o;
}

bool isAddress(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

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

Status addConfiguredHeaders(const alerting::HttpClientConfig& http, HttpHeaders& headers) {
  for (const auto& [name, value] : http.headers) {
    headers.emplace_back(name, value);
  }
  auto auth = authorizationHeader(http);
  if (!auth) {
    return auth.status();
  }
  if (!auth->empty()) {
    headers.emplace_back("Authorization", *auth);
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

std::string formEncode(const HttpHeaders& fields) {
  std::string out;
  auto encode = [&out](const std::string& text) { appendPercentEncoded(out, text); };
  for (const auto& [name, value] : fields) {
    if (!out.empty()) {
      out += '&';
    }
    encode(name);
    out += '=';
    encode(value);
  }
  return out;
}

// One connection at a time, driven by a private io_context that the calling thread runs for
// each step: a blocking client with Beast's timers bounding the whole exchange.
struct HttpClient::Impl {
  Result<Origin> origin;
  alerting::HttpClientConfig http;
  std::chrono::milliseconds timeout;
  asio::io_context ioc{1};
  std::unique_ptr<asio::ssl::context> tls_context;  // made by the first https connection
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;  // bytes read past an answer belong to the connection
  std::atomic<bool> cancelled{false};

  Impl(const std::string& o, alerting::HttpClientConfig h, std::chrono::milliseconds t)
      : origin(parseOrigin(o)), http(std::move(h)), timeout(t) {}

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  bool connected() { return (plain || secure) && lowest().socket().is_open(); }
  // Only between steps: a stream must not go away under an operation in flight.
  void disconnect() {
    if (plain || secure) {
      lowest().close();
    }
    secure.reset();
    plain.reset();
    buffer.clear();
  }

  // Starts one asynchronous step and runs it to completion (or to the deadline set on the
  // stream, which makes it fail with beast::error::timeout).
  template <class Start>
  beast::error_code await(Start start) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result.value_or(asio::error::operation_aborted);
  }

  Status makeTlsContext() {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    beast::error_code ec;
    if (http.insecure_skip_verify) {
      ctx->set_verify_mode(asio::ssl::verify_none);
    } else {
      ctx->set_verify_mode(asio::ssl::verify_peer);
      if (http.ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
      } else {
        ctx->load_verify_file(http.ca_file, ec);
      }
      if (ec) {
        return unavailable(
            "cannot load " +
            (http.ca_file.empty() ? "the system's CAs" : "tls_config.ca_file " + http.ca_file) +
            ": " + ec.message());
      }
    }
    tls_context = std::move(ctx);
    return Status::ok();
  }

  Status connect(Clock::time_point deadline) {
    const Origin& o = *origin;
    const std::string where = o.host + ":" + o.port;
    // getaddrinfo blocks, bounded by the system resolver's own timeouts; targets are most
    // often addresses, which it does not look up.
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(o.host, o.port, ec);
    if (ec) {
      return unavailable("cannot resolve " + o.host + ": " + ec.message());
    }
    if (!o.tls) {
      plain.emplace(ioc);
    } else {
      if (!tls_context) {
        VIGIL_RETURN_IF_ERROR(makeTlsContext());
      }
      secure.emplace(ioc, *tls_context);
      SSL* ssl = secure->native_handle();
      if (isAddress(o.host)) {
        if (!http.insecure_skip_verify) {
          X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o.host.c_str());
        }
      } else {
        SSL_set_tlsext_host_name(ssl, o.host.c_str());
        if (!http.insecure_skip_verify) {
          SSL_set1_host(ssl, o.host.c_str());
        }
      }
    }
    lowest().expires_at(deadline);
    ec = await([&](auto handler) { lowest().async_connect(endpoints, std::move(handler)); });
    if (ec) {
      return unavailable("cannot connect to " + where + ": " + describe(ec));
    }
    if (secure) {
      ec = await([&](auto handler) {
        secure->async_handshake(asio::ssl::stream_base::client, std::move(handler));
      });
      if (ec) {
        const long verify = SSL_get_verify_result(secure->native_handle());
        if (verify != X509_V_OK) {
          return unavailable("certificate of " + where + " not trusted: " +
                             X509_verify_cert_error_string(verify) + " (set tls_config.ca_file)");
        }
        return unavailable("TLS handshake with " + where + " failed: " + describe(ec));
      }
    }
    return Status::ok();
  }

  std::string describe(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) {
      return "no answer within " + std::to_string(timeout.count()) + "ms";
    }
    return ec.message();
  }

  // Writes the request and reads the answer; `answered` says whether any of it arrived.
  template <class Stream>
  beast::error_code exchange(Stream& stream, const http::request<http::string_body>& req,
                             http::response_parser<http::string_body>& parser) {
    beast::error_code ec =
        await([&](auto handler) { http::async_write(stream, req, std::move(handler)); });
    if (ec) {
      return ec;
    }
    return await(
        [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  }
};

HttpClient::HttpClient(const std::string& origin, alerting::HttpClientConfig http,
                       std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(origin, std::move(http), timeout)) {}

HttpClient::~HttpClient() = default;

void HttpClient::cancel() {
  impl_->cancelled = true;
  // On the thread running the exchange, if there is one: closing fails what is in flight.
  asio::post(impl_->ioc, [impl = impl_.get()] {
    if (impl->plain || impl->secure) {
      impl->lowest().close();
    }
  });
}

Result<HttpAnswer> HttpClient::request(const std::string& method, const std::string& target,
                                       const HttpHeaders& headers, const std::string& body,
                                       const std::string& content_type) {
  Impl& c = *impl_;
  if (!c.origin) {
    return c.origin.status();
  }
  const http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    return invalidArgument("unknown HTTP method " + method);
  }
  http::request<http::string_body> req{verb, target.empty() ? "/" : target, 11};
  req.set(http::field::host, c.origin->authority);
  for (const auto& [name, value] : headers) {
    req.insert(name, value);
  }
  if (!content_type.empty()) {
    req.set(http::field::content_type, content_type);
  }
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();
  const Clock::time_point deadline = Clock::now() + c.timeout;
  for (int attempt = 0;; ++attempt) {
    if (c.cancelled) {
      c.disconnect();
      return unavailable("cancelled");
    }
    const bool reused = c.connected();
    if (reused) {
      c.lowest().expires_at(deadline);
    } else {
      c.disconnect();
      if (Status st = c.connect(deadline); !st.isOk()) {
        c.disconnect();
        return st;
      }
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    const beast::error_code ec =
        c.secure ? c.exchange(*c.secure, req, parser) : c.exchange(*c.plain, req, parser);
    if (!ec) {
      auto& res = parser.get();
      HttpAnswer answer;
      answer.status = static_cast<int>(res.result_int());
      answer.retry_after = std::string(res[http::field::retry_after]);
      answer.body = std::move(res.body());
      if (!res.keep_alive()) {
        c.disconnect();
      }
      return answer;
    }
    c.disconnect();
    // A kept connection the server has closed meanwhile: once more on a new one.
    const bool closed_by_server = ec == http::error::end_of_stream ||
                                  ec == asio::error::connection_reset ||
                                  ec == asio::error::broken_pipe || ec == asio::error::eof ||
                                  ec == asio::ssl::error::stream_truncated;
    if (reused && attempt == 0 && !parser.got_some() && closed_by_server && !c.cancelled) {
      continue;
    }
    if (ec == http::error::body_limit) {
      return unavailable("answer from " + c.origin->authority + " over " +
                         std::to_string(kMaxBody) + " bytes");
    }
    return unavailable("request to " + c.origin->authority + " failed: " + c.describe(ec));
  }
}

}  // namespace vigil::exporters
