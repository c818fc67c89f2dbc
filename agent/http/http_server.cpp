#include "http_server.h"

#include <charconv>

#include <isa-l/igzip_lib.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "vigil/thread_name.h"

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

namespace {

// A gzip stream state kept between responses: setting one up costs about as much as
// compressing a scrape of a few hundred series (its tables are mapped, faulted in and zeroed
// each time). One is kept, not one per thread, to keep the memory bounded; a response
// compressed while it is in use makes its own.
//
// ISA-L rather than zlib: a scrape's gzip was the largest single cost of serving /metrics
// (perf, vigil scraped like node_bench does). On a node scrape (62 KB of exposition text,
// compressed in a loop) zlib's level 1 took 352 us for 11.4 KB and ISA-L's level 1 63 us for
// 11.1 KB; ISA-L's level 0 takes about 40 % less than its level 1 measured alongside it (62
// against 109 us and 87 against 143 in two runs on another machine) for 12.3 KB against 10.9:
// 1.3 KB more on the wire per scrape for about 6 % less of a scrape's serving CPU.
class Deflater {
 public:
  Deflater() : stream_(std::make_unique<isal_zstream>()) {}

  std::string compress(const std::string& data) {
    if (data.size() > std::numeric_limits<uint32_t>::max()) {
      return {};  // the stream counts input in 32 bits; such a body goes out uncompressed
    }
    isal_zstream& zs = *stream_;
    isal_deflate_init(&zs);
    zs.gzip_flag = IGZIP_GZIP;
    zs.level = 0;  // needs no level buffer
    zs.end_of_stream = 1;
    zs.flush = NO_FLUSH;
    zs.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uint32_t>(data.size());
    // Exposition text shrinks to a fifth or less; the buffer grows if this body does not. It
    // is kept between responses: sizing a new string zero-fills it, for half a body's length.
    if (buffer_.size() < data.size() / 2 + 1024) {
      buffer_.resize(data.size() / 2 + 1024);
    }
    std::size_t produced = 0;
    while (true) {
      zs.next_out = reinterpret_cast<uint8_t*>(buffer_.data()) + produced;
      zs.avail_out = static_cast<uint32_t>(
          std::min<std::size_t>(buffer_.size() - produced, std::numeric_limits<uint32_t>::max()));
      const std::size_t room = zs.avail_out;
      if (isal_deflate(&zs) != COMP_OK) {
        return {};
      }
      produced += room - zs.avail_out;
      if (zs.internal_state.state == ZSTATE_END) {
        break;
      }
      buffer_.resize(buffer_.size() * 2);
    }
    std::string out(buffer_.data(), produced);
    if (buffer_.size() > kKeptBufferBytes) {
      buffer_ = std::string();  // a federation-sized body's buffer is not kept
    }
    return out;
  }

 private:
  static constexpr std::size_t kKeptBufferBytes = 1 << 20;
  std::unique_ptr<isal_zstream> stream_;  // 80 KB: not on a thread's stack
  std::string buffer_;
};

std::mutex kept_deflater_mu;

}  // namespace

std::string gzipCompress(const std::string& data) {
  std::unique_lock lock(kept_deflater_mu, std::try_to_lock);
  if (lock.owns_lock()) {
    static Deflater kept;
    return kept.compress(data);
  }
  return Deflater().compress(data);
}

Result<std::string> gzipDecompress(std::string_view data, std::size_t max_bytes) {
  z_stream zs{};
  // 16 + MAX_WBITS: a gzip header and trailer around the deflate stream, checked.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    return internalError("gzip: cannot set up a decompressor");
  }
  std::string out;
  char chunk[16384];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  std::size_t left = data.size();
  while (true) {
    if (zs.avail_in == 0 && left > 0) {
      zs.avail_in =
          static_cast<uInt>(std::min<std::size_t>(left, std::numeric_limits<uInt>::max()));
      left -= zs.avail_in;
    }
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > max_bytes) {
      inflateEnd(&zs);
      return invalidArgument("gzip: the body decompresses to more than " +
                             std::to_string(max_bytes) + " bytes");
    }
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      // Members may follow one another (RFC 1952); each is decompressed in turn.
      if (zs.avail_in == 0 && left == 0) {
        break;
      }
      inflateReset(&zs);
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      const std::string why = "gzip: " + std::string(zs.msg != nullptr ? zs.msg : "not gzip data") +
                              " (at byte " + std::to_string(zs.total_in) + ")";
      inflateEnd(&zs);
      return invalidArgument(why);
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) {
      inflateEnd(&zs);
      return invalidArgument("gzip: the body ends in the middle of the stream");
    }
  }
  inflateEnd(&zs);
  return out;
}

namespace {

struct Route {
  std::vector<std::string> methods;
  HttpHandler handler;
  Access access = Access::kByMethod;
};

constexpr std::size_t kMinGzipBytes = 1024;
constexpr std::size_t kMaxRateClients = 4096;
// How often a new connection may look at whether the certificate's files changed.
constexpr auto kTlsCheckPeriod = std::chrono::seconds(1);

// Mozilla's "intermediate" TLS 1.2 ciphers (forward secret, AEAD only); TLS 1.3 has its own.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

Result<std::shared_ptr<asio::ssl::context>> makeTlsContext(const WebConfig::Tls& tls) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use |
                   asio::ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(ctx->native_handle(),
                                tls.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx->native_handle(), kTls12Ciphers);
  beast::error_code ec;
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) {
    return invalidArgument("cannot load the certificate " + tls.cert_file + ": " + ec.message());
  }
  ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return invalidArgument("cannot load the key " + tls.key_file + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return invalidArgument("the key " + tls.key_file + " does not belong to the certificate " +
                           tls.cert_file);
  }
  if (!tls.client_ca_file.empty()) {
    ctx->load_verify_file(tls.client_ca_file, ec);
    if (ec) {
      return invalidArgument("cannot load the client CA " + tls.client_ca_file + ": " +
                             ec.message());
    }
  }
  if (tls.require_client_cert) {
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

// What tells that a file changed: its modification time and size.
std::pair<int64_t, uintmax_t> fileStamp(const std::string& path) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path, ec);
  auto size = std::filesystem::file_size(path, ec);
  return {ec ? 0 : static_cast<int64_t>(t.time_since_epoch().count()), ec ? 0 : size};
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  SelfMetrics& metrics;
  mutable std::mutex mu;  // policy and the TLS state below
  std::shared_ptr<const AccessPolicy> policy = std::make_shared<const AccessPolicy>();
  std::shared_ptr<asio::ssl::context> tls_context;
  std::pair<int64_t, uintmax_t> cert_stamp, key_stamp;
  std::chrono::steady_clock::time_point tls_checked;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled;
  };
  std::mutex rate_mu;
  std::unordered_map<std::string, Bucket> buckets;  // by client address, guarded by rate_mu

  // A token from the client's bucket, if it has one left.
  bool takeRequestToken(const std::string& client) {
    const double rate = options.requests_per_second_per_client;
    if (rate <= 0) {
      return true;
    }
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(rate_mu);
    if (buckets.size() >= kMaxRateClients && buckets.count(client) == 0) {
      // Bounded memory whatever the number of clients: forget those whose buckets have
      // refilled (they are as if new), and if that is not enough, everyone.
      const auto full = std::chrono::duration<double>(options.burst / rate);
      std::erase_if(buckets, [&](const auto& kv) { return now - kv.second.refilled >= full; });
      if (buckets.size() >= kMaxRateClients) {
        buckets.clear();
      }
    }
    auto [it, inserted] = buckets.try_emplace(client, Bucket{options.burst, now});
    Bucket& b = it->second;
    if (!inserted) {
      b.tokens = std::min(
          options.burst, b.tokens + std::chrono::duration<double>(now - b.refilled).count() * rate);
      b.refilled = now;
    }
    if (b.tokens < 1) {
      return false;
    }
    b.tokens -= 1;
    return true;
  }
  std::map<std::string, Route> routes;
  std::vector<std::pair<std::string, Route>> prefix_routes;
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> gzip{true};  // options.gzip, then as a reload sets it
  uint16_t port = 0;
  std::vector<std::thread> threads;
  // One io_context per thread, each run by its thread alone, and a connection lives on one of
  // them (Envoy's worker model): sharing one io_context among the threads handed every read
  // from the thread that polled to another one, with a futex wake-up each time (about twelve
  // per request, most of the cost of a small POST). Destroyed in reverse order: the acceptor
  // before the io_contexts, and those (with every pending session) before the members above.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::atomic<std::size_t> next_context{0};
  tcp::acceptor acceptor;

  Impl(HttpServerOptions o, SelfMetrics& m)
      : options(std::move(o)),
        metrics(m),
        gzip(options.gzip),
        contexts(makeContexts(options.threads)),
        acceptor(*contexts.front()) {}

  static std::vector<std::unique_ptr<asio::io_context>> makeContexts(std::size_t threads) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i) {
      // The hint says one thread runs it, so it does not wake others for its events.
      out.push_back(std::make_unique<asio::io_context>(1));
    }
    return out;
  }

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
    std::shared_ptr<const AccessPolicy> current;
    {
      std::lock_guard lock(mu);
      current = policy;
    }
    const auto decision = current->decide(route.access, req.method, req.header("authorization"));
    if (decision.status != 0) {
      res.status = decision.status;
      res.body = decision.message + "\n";
      if (decision.status == 401) {
        res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"vigil\"");
      }
      metrics.httpRefused(decision.reason);
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

  // The TLS context for a new connection: the current one, or a new one when the certificate
  // or key file changed since (a renewed certificate is served without a restart). A change
  // that does not load keeps the current one.
  std::shared_ptr<asio::ssl::context> currentTlsContext() {
    std::lock_guard lock(mu);
    const auto now = std::chrono::steady_clock::now();
    if (now - tls_checked < kTlsCheckPeriod) {
      return tls_context;
    }
    tls_checked = now;
    auto cert = fileStamp(options.tls->cert_file);
    auto key = fileStamp(options.tls->key_file);
    if (cert == cert_stamp && key == key_stamp) {
      return tls_context;
    }
    cert_stamp = cert;
    key_stamp = key;
    auto fresh = makeTlsContext(*options.tls);
    if (!fresh) {
      spdlog::error(
          "tls: the changed certificate does not load, serving the previous one "
          "error=\"{}\"",
          fresh.status().message());
      metrics.tlsReload(false);
      return tls_context;
    }
    spdlog::info("tls: certificate reloaded cert_file={}", options.tls->cert_file);
    metrics.tlsReload(true);
    tls_context = std::move(fresh).value();
    return tls_context;
  }
};

namespace {

constexpr std::size_t kReadBufferBytes = 16 * 1024;

using TlsStream = asio::ssl::stream<tcp::socket>;

// One connection, plain (tcp::socket) or TLS (TlsStream).
//
// Beast's parser is fed by hand from async_read_some, and a response goes out as one gathered
// write of a head written here and the body, rather than through Beast's composed async_read
// and async_write on a beast::tcp_stream: those re-arm the stream's timer around every
// operation (a timerfd_settime each time it is the earliest) and go through more layers, which
// on a scrape a second was a measurable part of serving /metrics. The deadline is a time kept
// here, checked by one timer that is moved only when the deadline comes earlier than it.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using Clock = std::chrono::steady_clock;

  Session(HttpServer::Impl* server, tcp::socket socket,
          std::shared_ptr<asio::ssl::context> tls = nullptr)
      : server_(server),
        tls_(std::move(tls)),
        stream_(makeStream(std::move(socket))),
        timer_(stream_.get_executor()),
        // Room for the largest header the parser accepts and one read past it, so that the
        // parser, not the buffer, is what refuses a larger one (with its 431).
        buffer_(server->options.max_header_bytes + kReadBufferBytes) {
    beast::error_code ec;
    auto remote = socket_().remote_endpoint(ec);
    client_ = ec ? std::string() : remote.address().to_string();
  }
  ~Session() { server_->connections.fetch_sub(1); }

  void start() {
    if constexpr (kTls) {
      setDeadline(server_->options.request_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  // A scanner, a plain-HTTP client, a missing client certificate.
                                  spdlog::debug("tls handshake failed error=\"{}\"", ec.message());
                                  self->close();
                                } else {
                                  self->readRequest();
                                }
                              });
    } else {
      readRequest();
    }
  }

 private:
  // What the request asked of its response.
  struct Reply {
    bool keep_alive = false;
    bool gzip = false;       // the client accepts it and the server sends it
    bool head_only = false;  // a HEAD: the headers and length of a GET, and no body
    bool http10 = false;     // an HTTP/1.0 client closes unless told otherwise
  };

  void readRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    setDeadline(first_ ? server_->options.request_timeout : server_->options.idle_timeout);
    first_ = false;
    parseBuffered();  // a pipelined request may be here already
  }

  // Feeds what has been read to the parser; reads more while the request is not whole.
  void parseBuffered() {
    while (!parser_->is_done() && buffer_.size() > 0) {
      beast::error_code ec;
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        break;
      }
      if (ec) {
        refuse(ec);
        return;
      }
      if (used == 0) {
        break;
      }
    }
    if (parser_->is_done()) {
      onRequest();
      return;
    }
    const std::size_t room = std::min(kReadBufferBytes, buffer_.max_size() - buffer_.size());
    if (room == 0) {
      refuse(http::error::header_limit);  // the parser would have said so first
      return;
    }
    stream_.async_read_some(buffer_.prepare(room),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->buffer_.commit(n);
                              if (ec) {
                                // The peer closed or reset, or the deadline closed the socket:
                                // nothing to answer, as with a request cut off half way.
                                self->close();
                                return;
                              }
                              self->parseBuffered();
                            });
  }

  // A request the parser refused: answered with why, then the connection closed.
  void refuse(beast::error_code ec) {
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
    write(std::move(res), Reply{});  // and close
  }

  void onRequest() {
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    std::string_view target(msg.target().data(), msg.target().size());
    const auto q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) {
      req.query = std::string(target.substr(q + 1));
    }
    for (const auto& field : msg) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      req.headers[name] = std::string(field.value());
    }
    req.body = std::move(msg.body());
    req.client = client_;
    Reply reply;
    reply.keep_alive = msg.keep_alive();
    reply.head_only = msg.method() == http::verb::head;
    reply.http10 = msg.version() == 10;
    HttpResponse res;
    if (!server_->takeRequestToken(client_)) {
      res.status = 429;
      res.headers.emplace_back("Retry-After", "1");
      res.body = "too many requests from " + client_ + ": more than " +
                 formatRate(server_->options.requests_per_second_per_client) +
                 " per second (web.limits.requests_per_second_per_client)\n";
      server_->metrics.httpRefused("rate_limited");
      server_->metrics.httpRequest("other", res.status);
      write(std::move(res), reply);
      return;
    }
    server_->dispatch(req, res);
    server_->metrics.httpRequest(server_->handlerLabel(req.path), res.status);
    reply.gzip = !reply.head_only && server_->gzip.load(std::memory_order_relaxed) &&
                 acceptsGzip(req.header("accept-encoding"));
    write(std::move(res), reply);
  }

  void write(HttpResponse res, Reply reply) {
    body_ = std::move(res.body);
    const bool compressible = reply.gzip && body_.size() >= kMinGzipBytes;
    bool compressed = false;
    if (compressible) {
      std::string smaller = gzipCompress(body_);
      if (!smaller.empty()) {
        body_ = std::move(smaller);
        compressed = true;
      }
    }
    // 1xx, 204 and 304 responses have no body and no length (RFC 9110, 6.4.1).
    const bool bodiless = res.status < 200 || res.status == 204 || res.status == 304;
    if (bodiless) {
      body_.clear();
    }
    head_.clear();
    head_ += "HTTP/1.1 ";
    head_ += std::to_string(res.status);
    head_ += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(res.status));
    head_.append(reason.data(), reason.size());
    head_ += "\r\nServer: vigil\r\n";
    appendHeader("Content-Type", res.content_type);
    for (const auto& [name, value] : res.headers) {
      appendHeader(name, value);
    }
    if (compressed) {
      head_ += "Content-Encoding: gzip\r\n";
    }
    if (compressible) {
      head_ += "Vary: Accept-Encoding\r\n";  // the encoding depended on the request's
    }
    if (!bodiless) {
      head_ += "Content-Length: ";
      head_ += std::to_string(body_.size());
      head_ += "\r\n";
    }
    if (!reply.keep_alive) {
      head_ += "Connection: close\r\n";
    } else if (reply.http10) {
      head_ += "Connection: keep-alive\r\n";
    }
    head_ += "\r\n";
    if (reply.head_only) {
      body_.clear();
    }
    setDeadline(server_->options.request_timeout);
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this(), keep_alive = reply.keep_alive](
                          beast::error_code ec, std::size_t) {
                        if (ec || !keep_alive) {
                          self->close();
                        } else {
                          self->readRequest();
                        }
                      });
  }

  // A header from a handler; one that could split the response (a CR or LF in it) is left out.
  void appendHeader(std::string_view name, std::string_view value) {
    if (name.find_first_of("\r\n:") != std::string_view::npos ||
        value.find_first_of("\r\n") != std::string_view::npos) {
      spdlog::error("http: a response header with a line break left out name={}", name);
      return;
    }
    head_.append(name);
    head_ += ": ";
    head_.append(value);
    head_ += "\r\n";
  }

  // The connection is closed once `after` from now passes without the next step. The timer is
  // moved only when this deadline is earlier than the one it waits for; when it fires for a
  // deadline since pushed back, it waits again for the new one.
  void setDeadline(std::chrono::milliseconds after) {
    deadline_ = Clock::now() + after;
    if (!timer_waiting_ || deadline_ < timer_.expiry()) {
      waitForDeadline();
    }
  }

  void waitForDeadline() {
    timer_.expires_at(deadline_);  // a wait already pending ends with operation_aborted
    timer_waiting_ = true;
    timer_.async_wait(
        [self = this->shared_from_this(), wait = ++timer_waits_](beast::error_code ec) {
          if (wait != self->timer_waits_) {
            return;  // a later wait replaced this one
          }
          self->timer_waiting_ = false;
          if (ec || self->closed_) {
            return;
          }
          if (Clock::now() >= self->deadline_) {
            self->close();  // the pending read or write ends with an error and lets go
          } else {
            self->waitForDeadline();
          }
        });
  }

  // Without TLS's close_notify: every response is delimited by its length, so a client loses
  // nothing, and waiting for a peer's close_notify could hold the connection.
  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    timer_.cancel();  // its pending wait holds this session alive
    beast::error_code ignored;
    socket_().shutdown(tcp::socket::shutdown_both, ignored);
    socket_().close(ignored);
  }

  tcp::socket& socket_() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  Stream makeStream(tcp::socket socket) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls_);
    } else {
      return socket;
    }
  }

  static std::string formatRate(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", r);
    return buf;
  }

  HttpServer::Impl* server_;
  std::string client_;                       // the peer's address, for its request budget
  std::shared_ptr<asio::ssl::context> tls_;  // outlives stream_, which refers to it
  Stream stream_;
  asio::steady_timer timer_;
  Clock::time_point deadline_;
  bool timer_waiting_ = false;
  uint64_t timer_waits_ = 0;
  bool closed_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;
  std::string body_;  // the response's, kept until written
  bool first_ = true;
};

}  // namespace

void HttpServer::Impl::accept() {
  // Connections go to the threads in turn.
  asio::io_context& context = *contexts[next_context.fetch_add(1) % contexts.size()];
  acceptor.async_accept(context, [this](beast::error_code ec, tcp::socket socket) {
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
        // The session starts on its own thread: from then on only that thread touches it.
        auto executor = socket.get_executor();
        if (options.tls) {
          auto session =
              std::make_shared<Session<TlsStream>>(this, std::move(socket), currentTlsContext());
          asio::post(executor, [session] { session->start(); });
        } else {
          auto session = std::make_shared<Session<tcp::socket>>(this, std::move(socket));
          asio::post(executor, [session] { session->start(); });
        }
      }
    }
    accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, SelfMetrics& self_metrics)
    : impl_(std::make_shared<Impl>(std::move(options), self_metrics)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& path, std::vector<std::string> methods,
                       HttpHandler handler, Access access) {
  impl_->routes[path] = Route{std::move(methods), std::move(handler), access};
}

void HttpServer::setAccessPolicy(AccessPolicy policy) {
  auto p = std::make_shared<const AccessPolicy>(std::move(policy));
  std::lock_guard lock(impl_->mu);
  impl_->policy = std::move(p);
}

void HttpServer::setGzip(bool gzip) { impl_->gzip.store(gzip, std::memory_order_relaxed); }

Status HttpServer::start() {
  Impl& s = *impl_;
  if (s.options.tls) {
    // A certificate that does not load stops the start: serving plain HTTP instead would
    // expose what the operator meant to protect.
    auto ctx = makeTlsContext(*s.options.tls);
    if (!ctx) {
      return ctx.status();
    }
    s.tls_context = std::move(ctx).value();
    s.cert_stamp = fileStamp(s.options.tls->cert_file);
    s.key_stamp = fileStamp(s.options.tls->key_file);
    s.tls_checked = std::chrono::steady_clock::now();
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(s.options.address.host, ec);
  if (ec) {
    // A host name: resolve it once, at start.
    tcp::resolver resolver(*s.contexts.front());
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
  for (std::size_t i = 0; i < s.contexts.size(); ++i) {
    // A thread's io_context runs even with nothing to do until stop().
    s.threads.emplace_back([impl = impl_, i] {
      nameThisThread("http", static_cast<int>(i));
      auto guard = asio::make_work_guard(*impl->contexts[i]);
      impl->contexts[i]->run();
    });
  }
  return Status::ok();
}

void HttpServer::routePrefix(const std::string& prefix, std::vector<std::string> methods,
                             HttpHandler handler, Access access) {
  impl_->prefix_routes.emplace_back(prefix, Route{std::move(methods), std::move(handler), access});
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::handle(const HttpRequest& req, HttpResponse& res) const {
  impl_->dispatch(req, res);
}

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
  for (auto& context : s.contexts) {
    context->stop();
  }
  for (auto& t : s.threads) {
    t.join();
  }
  s.threads.clear();
  beast::error_code ignored;
  s.acceptor.close(ignored);
}

}  // namespace vigil
