// The gzip encoding of responses: what a client inflates is what was rendered, on every
// response, however many are compressed at once (a deflate state is kept between them).
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "agent/http/http_server.h"

using namespace vigil;

namespace {

std::string gunzip(const std::string& data) {
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);  // gzip only
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  }
  inflateEnd(&zs);
  CHECK(rc == Z_STREAM_END);
  return out;
}

std::string exposition(int seed, int lines) {
  std::string out;
  for (int i = 0; i < lines; ++i) {
    out += "node_metric_" + std::to_string((i * 7 + seed) % 97) + "{device=\"eth" +
           std::to_string(seed) + "\"} " + std::to_string(i * seed) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("Gzip: every response inflates to what was rendered, one after another", "[http]") {
  // Different sizes and contents in a row: a kept state that carried anything over from the
  // response before would show here.
  for (int seed : {1, 2, 3, 1}) {
    const std::string body = exposition(seed, 200 * seed);
    const std::string gz = gzipCompress(body);
    REQUIRE(gz.size() > 10);
    CHECK(static_cast<unsigned char>(gz[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(gz[1]) == 0x8b);
    CHECK(gz.size() < body.size());
    CHECK(gunzip(gz) == body);
  }
  CHECK(gunzip(gzipCompress("")).empty());
}

TEST_CASE("Gzip: a body that does not compress still inflates to itself", "[http]") {
  // Random bytes come out larger than they went in: the output buffer, sized for text that
  // shrinks, has to grow several times.
  std::string body(300 * 1024, '\0');
  uint64_t x = 88172645463325252ULL;
  for (char& c : body) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  const std::string gz = gzipCompress(body);
  REQUIRE(gz.size() >= body.size());
  CHECK(gunzip(gz) == body);
  // And the kept state is fine for the text after it.
  const std::string text = exposition(5, 500);
  CHECK(gunzip(gzipCompress(text)) == text);
}

TEST_CASE("Gzip: responses compressed at the same time on several threads", "[http]") {
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &good] {
      for (int i = 0; i < 50; ++i) {
        const std::string body = exposition(t + i, 100 + 10 * t);
        z_stream zs{};
        inflateInit2(&zs, 15 + 16);
        const std::string gz = gzipCompress(body);
        std::string out(body.size() + 1, '\0');
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
        zs.avail_in = static_cast<uInt>(gz.size());
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        const bool ended = inflate(&zs, Z_FINISH) == Z_STREAM_END;
        out.resize(zs.total_out);
        inflateEnd(&zs);
        good[static_cast<std::size_t>(t)] += ended && out == body ? 1 : 0;
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  for (int g : good) {
    CHECK(g == 50);
  }
}

namespace {

// zlib's gzip, not the server's ISA-L: bodies as a client compresses them.
std::string zlibGzip(const std::string& data) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("Gzip request bodies: decompressed whole, members in turn, bounded", "[http]") {
  const std::string body = exposition(3, 2000);  // ~60 KB: several output chunks
  auto plain = gzipDecompress(zlibGzip(body), 1 << 20);
  REQUIRE(plain);
  CHECK(*plain == body);
  // Two members one after another (RFC 1952) are one body, as gzip -d reads them.
  auto joined = gzipDecompress(zlibGzip("a 1\n") + zlibGzip("b 2\n"), 1 << 20);
  REQUIRE(joined);
  CHECK(*joined == "a 1\nb 2\n");
  auto empty = gzipDecompress(zlibGzip(""), 1 << 20);
  REQUIRE(empty);
  CHECK(empty->empty());

  const std::string gz = zlibGzip(body);
  auto cut = gzipDecompress(std::string_view(gz).substr(0, gz.size() / 2), 1 << 20);
  REQUIRE_FALSE(cut);
  CHECK_THAT(cut.status().message(), Catch::Contains("ends in the middle"));
  auto not_gzip = gzipDecompress(body, 1 << 20);
  REQUIRE_FALSE(not_gzip);
  CHECK_THAT(not_gzip.status().message(), Catch::StartsWith("gzip: incorrect header check"));
  std::string damaged = gz;
  damaged[damaged.size() - 5] ^= 0x55;  // the CRC-32 of the trailer
  auto bad_crc = gzipDecompress(damaged, 1 << 20);
  REQUIRE_FALSE(bad_crc);
  CHECK_THAT(bad_crc.status().message(), Catch::Contains("incorrect data check"));
  // A small body that would inflate past the limit is refused, not inflated whole.
  auto bomb = gzipDecompress(zlibGzip(std::string(10 << 20, 'x')), 1 << 20);
  REQUIRE_FALSE(bomb);
  CHECK_THAT(bomb.status().message(), Catch::Contains("more than 1048576 bytes"));
}
