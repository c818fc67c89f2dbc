// Checkpoints: the whole store in one file, written atomically and verified on load.
//
// Layout (little-endian): "VIGILTS1", u32 version, u64 series count, then per series:
// u16 label count, (u32 len, bytes) name and value per label, u32 closed chunk count, per chunk
// i64 mint, i64 maxt, u16 count, u32 bits, bytes; then the head: u16 count, u32 bits, i64
// head_mint, the encoder state (version 2 adds the scaled-integer fields), bytes; then i64 last_t,
// u64 last value bits. Last: u32 CRC-32 of everything before it.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "mem_store.h"
#include "vigil/atomic_file.h"

namespace vigil::store {

namespace {

constexpr char kMagic[8] = {'V', 'I', 'G', 'I', 'L', 'T', 'S', '1'};
constexpr uint32_t kVersion = 2;

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) { buf_.reserve(kBufferBytes); }

  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof v);
  }
  void bytes(const void* p, std::size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    if (buf_.size() >= kBufferBytes) {
      flush();
    }
  }
  void str(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  bool finish() {
    flush();
    uint32_t crc = static_cast<uint32_t>(crc_);
    buf_.append(reinterpret_cast<const char*>(&crc), sizeof crc);
    write();
    return ok_;
  }

 private:
  static constexpr std::size_t kBufferBytes = 1 << 16;
  // The CRC is taken over each buffer as it is written rather than over each field as it is
  // put: one call per 64 KiB instead of one per field of a few bytes, which was most of a
  // checkpoint's CPU time.
  void flush() {
    crc_ = crc32(crc_, reinterpret_cast<const Bytef*>(buf_.data()), static_cast<uInt>(buf_.size()));
    write();
  }
  void write() {
    std::size_t off = 0;
    while (ok_ && off < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        ok_ = false;
        break;
      }
      off += static_cast<std::size_t>(n);
    }
    buf_.clear();
  }
  int fd_;
  std::string buf_;
  uLong crc_ = crc32(0, nullptr, 0);
  bool ok_ = true;
};

class Reader {
 public:
  Reader(const char* data, std::size_t size) : p_(data), end_(data + size) {}
  template <typename T>
  bool get(T& v) {
    if (static_cast<std::size_t>(end_ - p_) < sizeof v) {
      return false;
    }
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    return true;
  }
  bool bytes(std::size_t n, const char*& out) {
    if (static_cast<std::size_t>(end_ - p_) < n) {
      return false;
    }
    out = p_;
    p_ += n;
    return true;
  }
  bool str(std::string& s) {
    uint32_t n = 0;
    const char* d = nullptr;
    if (!get(n) || !bytes(n, d)) {
      return false;
    }
    s.assign(d, n);
    return true;
  }
  bool atEnd() const { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

bool isSortedForCheckpoint(const LabelSet& labels) {
  for (std::size_t i = 1; i < labels.size(); ++i) {
    if (!(labels[i - 1].name < labels[i].name)) {
      return false;
    }
  }
  return true;
}

Status ioError(const std::string& what, const std::string& path) {
  return unavailable(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Status MemStore::saveCheckpoint(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  for (const std::string* p : {&path, &tmp}) {
    if (Status st = checkReplaceable(*p); !st.isOk()) {
      return st;
    }
  }
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ioError("cannot create", tmp);
  }
  Writer w(fd);
  w.bytes(kMagic, sizeof kMagic);
  w.put<uint32_t>(kVersion);
  {
    std::shared_lock index_lock(index_mu_);
    uint64_t n = 0;
    for (const auto& s : by_id_) {
      n += s ? 1 : 0;
    }
    w.put<uint64_t>(n);
    for (const auto& owned : by_id_) {
      if (!owned) {
        continue;
      }
      const Series& s = *owned;
      w.put<uint16_t>(static_cast<uint16_t>(s.labels.size()));
      for (const auto& [name, value] : s.labels) {
        w.str(*name);
        w.str(*value);
      }
      std::lock_guard lock(owned->mu);
      w.put<uint32_t>(static_cast<uint32_t>(s.closed.size()));
      for (const ClosedChunk& c : s.closed) {
        w.put<int64_t>(c.mint);
        w.put<int64_t>(c.maxt);
        w.put<uint16_t>(c.count);
        w.put<uint32_t>(c.bits);
        w.bytes(c.data.get(), (c.bits + 7) / 8);
      }
      const GorillaEncoder& h = s.head;
      w.put<uint16_t>(h.count);
      w.put<uint32_t>(h.bits);
      w.put<int64_t>(s.head_mint);
      w.put<int64_t>(h.prev_t);
      w.put<int64_t>(h.prev_delta);
      w.put<uint64_t>(h.prev_value);
      w.put<uint8_t>(h.leading);
      w.put<uint8_t>(h.trailing);
      w.put<uint8_t>(h.scale);
      w.put<int64_t>(h.prev_int);
      w.put<int64_t>(h.prev_int_delta);
      w.bytes(h.bytes.data(), (h.bits + 7) / 8);
      w.put<int64_t>(s.last_t);
      w.put<uint64_t>(s.last_value_bits);
    }
  }
  const bool written = w.finish();
  const bool synced = written && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) {
    Status st = ioError("cannot write", tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = ioError("cannot rename to", path);
    ::unlink(tmp.c_str());
    return st;
  }
  // The rename itself must reach the disk too.
  const std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

Status MemStore::loadCheckpoint(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? notFound("no checkpoint at " + path) : ioError("cannot open", path);
  }
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  auto corrupt = [&](const std::string& why) {
    return invalidArgument("checkpoint " + path + " is corrupt: " + why);
  };
  if (data.size() < sizeof kMagic + 4 + 8 + 4 || std::memcmp(data.data(), kMagic, sizeof kMagic)) {
    return corrupt("not a vigil checkpoint or truncated");
  }
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, data.data() + data.size() - 4, 4);
  const uLong crc = crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(data.data()),
                          static_cast<uInt>(data.size() - 4));
  if (static_cast<uint32_t>(crc) != stored_crc) {
    return corrupt("checksum mismatch");
  }

  // Parsed in full before anything is replaced, so a bad file leaves the store as it was.
  struct Loaded {
    LabelSet labels;
    std::vector<ClosedChunk> closed;
    GorillaEncoder head;
    int64_t head_mint = 0;
    int64_t last_t = 0;
    uint64_t last_bits = 0;
  };
  std::vector<Loaded> loaded;
  Reader r(data.data() + sizeof kMagic, data.size() - sizeof kMagic - 4);
  uint32_t version = 0;
  uint64_t count = 0;
  if (!r.get(version) || version != kVersion) {
    return corrupt("unsupported version " + std::to_string(version));
  }
  if (!r.get(count) || count > data.size()) {
    return corrupt("bad series count");
  }
  loaded.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    Loaded l;
    uint16_t nlabels = 0;
    if (!r.get(nlabels)) {
      return corrupt("truncated labels");
    }
    for (uint16_t j = 0; j < nlabels; ++j) {
      Label label;
      if (!r.str(label.name) || !r.str(label.value)) {
        return corrupt("truncated labels");
      }
      l.labels.push_back(std::move(label));
    }
    if (!isSortedForCheckpoint(l.labels)) {
      return corrupt("labels out of order");
    }
    uint32_t nchunks = 0;
    if (!r.get(nchunks)) {
      return corrupt("truncated chunk list");
    }
    for (uint32_t j = 0; j < nchunks; ++j) {
      ClosedChunk c;
      const char* bytes = nullptr;
      if (!r.get(c.mint) || !r.get(c.maxt) || !r.get(c.count) || !r.get(c.bits) ||
          !r.bytes((c.bits + 7) / 8, bytes)) {
        return corrupt("truncated chunk");
      }
      c.data = arena_.copy(reinterpret_cast<const uint8_t*>(bytes), (c.bits + 7) / 8);
      l.closed.push_back(std::move(c));
    }
    GorillaEncoder& h = l.head;
    const char* bytes = nullptr;
    if (!r.get(h.count) || !r.get(h.bits) || !r.get(l.head_mint) || !r.get(h.prev_t) ||
        !r.get(h.prev_delta) || !r.get(h.prev_value) || !r.get(h.leading) || !r.get(h.trailing) ||
        !r.get(h.scale) || !r.get(h.prev_int) || !r.get(h.prev_int_delta) ||
        !r.bytes((h.bits + 7) / 8, bytes) || !r.get(l.last_t) || !r.get(l.last_bits)) {
      return corrupt("truncated head chunk");
    }
    h.bytes.assign(bytes, bytes + (h.bits + 7) / 8);
    h.values_minimal = false;  // unknown: closing it tries the other encoding
    loaded.push_back(std::move(l));
  }
  if (!r.atEnd()) {
    return corrupt("trailing bytes");
  }

  clearAll();
  for (Loaded& l : loaded) {
    Series* s = getOrCreatePinned(l.labels, labelsHash(l.labels));
    {
      std::lock_guard lock(s->mu);
      std::size_t samples = l.head.count;
      for (ClosedChunk& c : l.closed) {
        samples += c.count;
        s->closed_bytes += closedChunkBytes(c);
        s->closed.push_back(std::move(c));
      }
      s->head = std::move(l.head);
      s->read_hint.reset();
      s->head_mint = l.head_mint;
      s->last_t = l.last_t;
      s->prev_t = INT64_MAX;
      s->last_value_bits = l.last_bits;
      sample_count_ += samples;
      account(*s);
    }
    s->pins.fetch_sub(1);
  }
  return Status::ok();
}

}  // namespace vigil::store
