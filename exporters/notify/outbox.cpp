#include "outbox.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include "vigil/json_integer.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kMaxMessageBytes = 4 << 20;  // far above any rendered notification

json toJson(const OutgoingMessage& m) {
  json headers = json::array();
  for (const auto& [name, value] : m.http.headers) {
    headers.push_back({name, value});
  }
  json then = json::array();
  for (const auto& f : m.then) {
    then.push_back({f.method, f.target, f.body});
  }
  return {{"id", m.id},
          {"notifier", m.notifier},
          {"receiver", m.receiver},
          {"group_key", m.group_key},
          {"target", m.target},
          {"body", m.body},
          {"then", then},
          {"created_at", m.created_at},
          {"http",
           {{"auth_type", m.http.auth_type},
            {"credentials", m.http.credentials},
            {"credentials_file", m.http.credentials_file},
            {"basic_username", m.http.basic_username},
            {"basic_password", m.http.basic_password},
            {"basic_password_file", m.http.basic_password_file},
            {"ca_file", m.http.ca_file},
            {"insecure_skip_verify", m.http.insecure_skip_verify},
            {"headers", headers}}}};
}

OutgoingMessage fromJson(const json& j) {
  OutgoingMessage m;
  m.id = j.at("id").get<std::string>();
  m.notifier = j.at("notifier").get<std::string>();
  m.receiver = j.at("receiver").get<std::string>();
  m.group_key = j.at("group_key").get<std::string>();
  m.target = j.at("target").get<std::string>();
  m.body = j.at("body").get<std::string>();
  // Absent from messages written before follow-ups existed.
  if (auto then = j.find("then"); then != j.end()) {
    for (const auto& f : *then) {
      m.then.push_back(
          {f.at(0).get<std::string>(), f.at(1).get<std::string>(), f.at(2).get<std::string>()});
    }
  }
  m.created_at = jsonInteger(j, "created_at");
  const json& h = j.at("http");
  m.http.auth_type = h.at("auth_type").get<std::string>();
  m.http.credentials = h.at("credentials").get<std::string>();
  m.http.credentials_file = h.at("credentials_file").get<std::string>();
  m.http.basic_username = h.at("basic_username").get<std::string>();
  m.http.basic_password = h.at("basic_password").get<std::string>();
  m.http.basic_password_file = h.at("basic_password_file").get<std::string>();
  m.http.ca_file = h.at("ca_file").get<std::string>();
  m.http.insecure_skip_verify = h.at("insecure_skip_verify").get<bool>();
  for (const auto& pair : h.at("headers")) {
    m.http.headers.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
  }
  return m;
}

Status syncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    return Status(StatusCode::kUnavailable, "cannot open " + path + ": " + std::strerror(errno));
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) {
    return Status(StatusCode::kUnavailable, "cannot sync " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

// A random suffix makes ids unique across nodes, so that a receiver deduplicating on the
// Idempotency-Key never mistakes two nodes' messages for one.
std::string randomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace

Result<std::vector<OutgoingMessage>> Outbox::load(std::size_t max_messages, std::size_t* corrupt) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  "cannot create the outbox directory " + dir_ + ": " + ec.message());
  }
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with(".tmp")) {
      fs::remove(entry.path(), ec);  // a write that did not finish: never acknowledged
    } else if (name.ends_with(".json")) {
      names.push_back(name);
    }
  }
  if (ec) {
    return Status(StatusCode::kUnavailable, "cannot list " + dir_ + ": " + ec.message());
  }
  std::sort(names.begin(), names.end());  // ids start with a zero-padded sequence number
  std::vector<OutgoingMessage> out;
  uint64_t max_seq = 0;
  for (const auto& name : names) {
    const std::string path = dir_ + "/" + name;
    try {
      if (fs::file_size(path) > kMaxMessageBytes) {
        throw std::runtime_error("larger than 4 MiB");
      }
      std::ifstream in(path, std::ios::binary);
      OutgoingMessage m = fromJson(json::parse(in));
      max_seq = std::max<uint64_t>(max_seq, std::strtoull(m.id.c_str(), nullptr, 10));
      out.push_back(std::move(m));
    } catch (const std::exception& e) {
      spdlog::error("outbox message unreadable, moved aside path={} error=\"{}\"", path, e.what());
      fs::rename(path, path + ".bad", ec);
      if (corrupt != nullptr) {
        ++*corrupt;
      }
    }
  }
  next_seq_ = max_seq + 1;
  if (out.size() > max_messages) {
    const std::size_t drop = out.size() - max_messages;
    spdlog::error("outbox holds more than its limit, dropping the oldest dropped={} limit={}", drop,
                  max_messages);
    for (std::size_t i = 0; i < drop; ++i) {
      remove(out[i].id);
    }
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  return out;
}

Status Outbox::add(OutgoingMessage& m) {
  char seq[24];
  std::snprintf(seq, sizeof seq, "%016llu", static_cast<unsigned long long>(next_seq_++));
  m.id = std::string(seq) + "-" + randomSuffix();
  const std::string final_path = pathOf(m.id);
  const std::string tmp = final_path + ".tmp";
  const std::string data = toJson(m).dump(-1, ' ', false, json::error_handler_t::replace);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status(StatusCode::kUnavailable, "cannot create " + tmp + ": " + std::strerror(errno));
  }
  if (Status st = writeAndSync(fd, data, tmp); !st.isOk()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return Status(StatusCode::kUnavailable, "cannot rename " + tmp + ": " + err);
  }
  // The rename itself must survive a power cut.
  return syncPath(dir_, O_RDONLY | O_DIRECTORY);
}

void Outbox::remove(const std::string& id) {
  if (::unlink(pathOf(id).c_str()) != 0 && errno != ENOENT) {
    spdlog::error("cannot remove a delivered message from the outbox id={} error=\"{}\"", id,
                  std::strerror(errno));
  }
}

}  // namespace vigil::exporters
