#include "http_server.h"

#include <charconv>

#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace vigil {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

bool acceptsGzip(const std::string& accept_encoding) {
  // Tokens are comma-separated, each optionally with parameters such as ";q=0.5".
  std::size_t pos = 0;
  while (pos <= accept_encoding.size()) {
    std::size_t comma = accept_encoding.find(',', pos);
    std::string token =
        accept_encoding.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::string lower;
    for (char c : token) {
      if (c != ' ' && c != '\t') {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    std::string coding = lower.substr(0, lower.find(';'));
    if (coding == "gzip" || coding == "*") {
      auto q = lower.find(";q=");
      if (q == std::string::npos || std::strtod(lower.c_str() + q + 3, nullptr) > 0) {
        return true;
      }
    }
    if (comma == std::string::npos) {
      break;
    }
    pos = comma + 1;
  }
  return false;
}

std::string gzipCompress(const std::string& data) {
  z_stream zs{};
  // 15 window bits + 16: a gzip header and trailer rather than raw zlib.
  // Fastest level: exposition text compresses well anyway, and a scrape should cost little CPU.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

namespace {

struct Route {
  std::vector<std::string> methods;
  HttpHandler handler;
};

constexpr std::size_t kMinGzipBytes = 1024;

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  SelfMetrics& metrics;
  std::map<std::string, Route> routes;
  std::vector<std::pair<std::string, Route>> prefix_routes;
  std::atomic<std::size_t> connections{0};
  uint16_t port = 0;
  std::vector<std::thread> threads;
  // Destroyed in reverse order: the acceptor before the io_context it belongs to, and the
  // io_context (with every pending session) before the members above.
  asio::io_context io;
  tcp::acceptor acceptor{asio::make_strand(io)};

  Impl(HttpServerOptions o, SelfMetrics& m) : options(std::move(o)), metrics(m) {}

  // Bounded cardinality for vigil_http_requests_total whatever paths clients send.
  std::string handlerLabel(const std::string& path) const {
    if (routes.count(path) != 0) {
      return path;
    }
    if (const auto* p = findPrefix(path)) {
      return p->first + "*";
    }
    return "other";
  }

  const std::pair<std::string, Route>* findPrefix(const std::string& path) const {
    const std::pair<std::string, Route>* best = nullptr;
    for (const auto& p : prefix_routes) {
      if (path.rfind(p.first, 0) == 0 && (best == nullptr || p.first.size() > best->first.size())) {
        best = &p;
      }
    }
    return best;
  }

  void dispatch(const HttpRequest& req, HttpResponse& res) const {
    const Route* found = nullptr;
    if (auto it = routes.find(req.path); it != routes.end()) {
      found = &it->second;
    } else if (const auto* p = findPrefix(req.path)) {
      found = &p->second;
    }
    if (found == nullptr) {
      res.status = 404;
      res.body = "404 page not found\n";
      return;
    }
    const Route& route = *found;
    if (std::find(route.methods.begin(), route.methods.end(), req.method) == route.methods.end()) {
      std::string allow;
      for (const auto& m : route.methods) {
        allow += allow.empty() ? m : ", " + m;
      }
      res.status = 405;
      res.headers.emplace_back("Allow", allow);
      res.body = "method not allowed; use " + allow + "\n";
      return;
    }
    try {
      route.handler(req, res);
    } catch (const std::exception& e) {
      // Handlers report errors through the response; an exception is a bug, but one request
      // must not take the server down.
      spdlog::error("http handler failed path={} error=\"{}\"", req.path, e.what());
      res = HttpResponse{};
      res.status = 500;
      res.body = "internal error\n";
    }
  }

  void accept();
};

namespace {

constexpr std::size_t kReadBufferBytes = 16 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl* server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {
    // Beast reads at most the buffer's free capacity at a time, starting at 512 bytes: a
    // 20 KB alert batch took ~40 reads, each with its epoll and timer calls. 16 KiB per
    // connection makes it two.
    buffer_.reserve(kReadBufferBytes);
  }
  ~Session() { server_->connections.fetch_sub(1); }

  void readRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(first_ ? server_->options.request_timeout
                                 : server_->options.idle_timeout);
    first_ = false;
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

 private:
  void onRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      close();
      return;
    }
    if (ec) {
      HttpResponse res;
      if (ec == http::error::header_limit) {
        res.status = 431;
        res.body = "request headers larger than " +
                   std::to_string(server_->options.max_header_bytes) + " bytes\n";
      } else if (ec == http::error::body_limit) {
        res.status = 413;
        res.body = "request body larger than " + std::to_string(server_->options.max_body_bytes) +
                   " bytes\n";
      } else {
        res.status = 400;
        res.body = "bad request: " + ec.message() + "\n";
      }
      server_->metrics.httpRequest("other", res.status);
      write(std::move(res), false, false);
      return;
    }
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    std::string target(msg.target());
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      req.query = target.substr(q + 1);
    }
    for (const auto& field : msg) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      req.headers[name] = std::string(field.value());
    }
    req.body = std::move(msg.body());
    HttpResponse res;
    server_->dispatch(req, res);
    server_->metrics.httpRequest(server_->handlerLabel(req.path), res.status);
    write(std::move(res), msg.keep_alive(), acceptsGzip(req.header("accept-encoding")));
  }

  void write(HttpResponse res, bool keep_alive, bool gzip) {
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(res.status));
    response_.set(http::field::server, "vigil");
    response_.set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) {
      response_.set(name, value);
    }
    if (gzip && res.body.size() >= kMinGzipBytes) {
      std::string compressed = gzipCompress(res.body);
      if (!compressed.empty()) {
        res.body = std::move(compressed);
        response_.set(http::field::content_encoding, "gzip");
      }
      response_.set(http::field::vary, "Accept-Encoding");
    }
    response_.body() = std::move(res.body);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    stream_.expires_after(server_->options.request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        if (ec || !keep_alive) {
                          self->close();
                        } else {
                          self->readRequest();
                        }
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  HttpServer::Impl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool first_ = true;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
      return;
    }
    if (!ec) {
      if (connections.fetch_add(1) >= options.max_connections) {
        connections.fetch_sub(1);
        spdlog::debug("http connection refused: {} connections open", options.max_connections);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(this, std::move(socket))->readRequest();
      }
    }
    accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, SelfMetrics& self_metrics)
    : impl_(std::make_shared<Impl>(std::move(options), self_metrics)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& path, std::vector<std::string> methods,
                       HttpHandler handler) {
  impl_->routes[path] = Route{std::move(methods), std::move(handler)};
}

Status HttpServer::start() {
  Impl& s = *impl_;
  beast::error_code ec;
  auto address = asio::ip::make_address(s.options.address.host, ec);
  if (ec) {
    // A host name: resolve it once, at start.
    tcp::resolver resolver(s.io);
    auto results = resolver.resolve(s.options.address.host, "", ec);
    if (ec || results.empty()) {
      return unavailable("cannot listen on " + s.options.address.toString() +
                         ": cannot resolve host: " + ec.message());
    }
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, s.options.address.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    s.acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return unavailable("cannot listen on " + s.options.address.toString() + ": " + ec.message());
  }
  s.port = s.acceptor.local_endpoint().port();
  s.accept();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, s.options.threads); ++i) {
    s.threads.emplace_back([impl = impl_] { impl->io.run(); });
  }
  return Status::ok();
}

void HttpServer::routePrefix(const std::string& prefix, std::vector<std::string> methods,
                             HttpHandler handler) {
  impl_->prefix_routes.emplace_back(prefix, Route{std::move(methods), std::move(handler)});
}

uint16_t HttpServer::port() const { return impl_->port; }

std::string percentDecode(std::string_view segment) {
  std::string out;
  for (std::size_t i = 0; i < segment.size(); ++i) {
    unsigned byte = 0;
    if (segment[i] == '%' && i + 2 < segment.size() &&
        std::from_chars(&segment[i + 1], &segment[i + 3], byte, 16).ptr == &segment[i + 3]) {
      out += static_cast<char>(byte);
      i += 2;
    } else {
      out += segment[i];
    }
  }
  return out;
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.threads.empty()) {
    return;
  }
  // Handlers already running finish; nothing new is read or accepted.
  s.io.stop();
  for (auto& t : s.threads) {
    t.join();
  }
  s.threads.clear();
  beast::error_code ignored;
  s.acceptor.close(ignored);
}

}  // namespace vigil
