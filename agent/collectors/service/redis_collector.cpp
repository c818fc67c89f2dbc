#include "redis_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>

#include "../common/tcp_client.h"
#include "credentials.h"

namespace vigil::collectors {

namespace {

constexpr std::size_t kMaxReply = 4 << 20;  // INFO is a few KiB; a bigger answer is not Redis

// INFO fields and their redis_exporter names; counters carry `_total`.
struct Field {
  const char* info;
  const char* metric;
  MetricType type;
};
constexpr Field kFields[] = {
    {"uptime_in_seconds", "redis_uptime_in_seconds", MetricType::kGauge},
    {"connected_clients", "redis_connected_clients", MetricType::kGauge},
    {"blocked_clients", "redis_blocked_clients", MetricType::kGauge},
    {"maxclients", "redis_max_clients", MetricType::kGauge},
    {"used_memory", "redis_memory_used_bytes", MetricType::kGauge},
    {"used_memory_rss", "redis_memory_used_rss_bytes", MetricType::kGauge},
    {"used_memory_peak", "redis_memory_used_peak_bytes", MetricType::kGauge},
    {"maxmemory", "redis_memory_max_bytes", MetricType::kGauge},
    {"mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", MetricType::kGauge},
    {"total_connections_received", "redis_connections_received_total", MetricType::kCounter},
    {"rejected_connections", "redis_rejected_connections_total", MetricType::kCounter},
    {"total_commands_processed", "redis_commands_processed_total", MetricType::kCounter},
    {"expired_keys", "redis_expired_keys_total", MetricType::kCounter},
    {"evicted_keys", "redis_evicted_keys_total", MetricType::kCounter},
    {"keyspace_hits", "redis_keyspace_hits_total", MetricType::kCounter},
    {"keyspace_misses", "redis_keyspace_misses_total", MetricType::kCounter},
    {"used_cpu_sys", "redis_cpu_sys_seconds_total", MetricType::kCounter},
    {"used_cpu_user", "redis_cpu_user_seconds_total", MetricType::kCounter},
    {"connected_slaves", "redis_connected_slaves", MetricType::kGauge},
};

// redis_exporter's generated HELP: "<name without redis_> metric".
std::string helpFor(const char* metric) { return std::string(metric + 6) + " metric"; }

std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

// One reply: a simple string, an error (as a failed Status), an integer or a bulk string.
Result<std::string> readReply(TcpClient& c, TcpClient::Deadline deadline) {
  auto line = c.readLine(deadline, 64 * 1024);
  if (!line) {
    return line.status();
  }
  if (line->empty()) {
    return invalidArgument("empty reply");
  }
  switch ((*line)[0]) {
    case '+':
    case ':':
      return line->substr(1);
    case '-':
      return Status(StatusCode::kUnavailable, "server replied: " + line->substr(1));
    case '$': {
      long long len = -1;
      auto [end, ec] = std::from_chars(line->data() + 1, line->data() + line->size(), len);
      if (ec != std::errc() || len < -1 || static_cast<std::size_t>(len) > kMaxReply) {
        return invalidArgument("bad bulk length in \"" + line->substr(0, 32) + "\"");
      }
      if (len == -1) {
        return std::string();
      }
      auto body = c.readExactly(static_cast<std::size_t>(len) + 2, deadline);
      if (!body) {
        return body.status();
      }
      body->resize(static_cast<std::size_t>(len));
      return body;
    }
    default:
      return invalidArgument("unexpected reply \"" + line->substr(0, 32) + "\"");
  }
}

// The elements of an array reply of simple or bulk strings (CONFIG GET's), or what failed.
Result<std::vector<std::string>> readArray(TcpClient& c, TcpClient::Deadline deadline) {
  auto line = c.readLine(deadline, 64 * 1024);
  if (!line) {
    return line.status();
  }
  if (line->empty()) {
    return invalidArgument("empty reply");
  }
  if ((*line)[0] == '-') {
    return Status(StatusCode::kUnavailable, "server replied: " + line->substr(1));
  }
  long long n = -1;
  auto [end, ec] = std::from_chars(line->data() + 1, line->data() + line->size(), n);
  if ((*line)[0] != '*' || ec != std::errc() || n < -1 || n > 1024) {
    return invalidArgument("expected an array, got \"" + line->substr(0, 32) + "\"");
  }
  std::vector<std::string> out;
  for (long long i = 0; i < n; ++i) {
    auto element = readReply(c, deadline);
    if (!element) {
      return element.status();
    }
    out.push_back(std::move(*element));
  }
  return out;
}

class RedisCollector : public Collector {
 public:
  explicit RedisCollector(std::vector<ServiceTarget> targets) : targets_(std::move(targets)) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (targets_.empty()) {
      return Status::ok();  // nothing configured: no empty families on /metrics
    }
    auto& up = out.family("redis_up", "Information about the Redis instance", MetricType::kGauge);
    auto& ping = out.family("redis_ping_duration_seconds",
                            "Round trip of a PING to the Redis instance", MetricType::kGauge);
    Status first_error = Status::ok();
    for (const auto& t : targets_) {
      Status st = collectOne(t, ctx.deadline, out, ping);
      MetricBatch::add(up, {{"target", t.address}}, st.isOk() ? 1 : 0);
      if (!st.isOk()) {
        // The password is never part of an error: errors come from the socket or the server.
        spdlog::warn("redis collection failed target={} error=\"{}\"", t.address, st.message());
        if (first_error.isOk()) {
          first_error = Status(st.code(), t.address + ": " + st.message());
        }
      }
    }
    return first_error;
  }

 private:
  Status collectOne(const ServiceTarget& t, TcpClient::Deadline deadline, MetricBatch& out,
                    MetricFamily& ping) {
    TcpClient c;
    if (Status st = c.connect(t.address, deadline); !st.isOk()) {
      return st;
    }
    auto password = targetPassword(t);
    if (!password) {
      return password.status();
    }
    if (!password->empty()) {
      const std::string auth = t.username.empty() ? command({"AUTH", *password})
                                                  : command({"AUTH", t.username, *password});
      if (Status st = c.send(auth, deadline); !st.isOk()) {
        return st;
      }
      if (auto r = readReply(c, deadline); !r) {
        return r.status();
      }
    }
    const auto ping_start = std::chrono::steady_clock::now();
    if (Status st = c.send(command({"PING"}), deadline); !st.isOk()) {
      return st;
    }
    if (auto r = readReply(c, deadline); !r) {
      return r.status();
    }
    MetricBatch::add(
        ping, {{"target", t.address}},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ping_start).count());
    if (Status st = c.send(command({"INFO"}), deadline); !st.isOk()) {
      return st;
    }
    auto info = readReply(c, deadline);
    if (!info) {
      return info.status();
    }
    // How many databases there are, for the keys of the empty ones (0), as redis_exporter
    // gives them. A server that refuses CONFIG (a managed Redis, an ACL without it) still
    // gives the others: its empty databases are left out.
    int databases = 0;
    if (Status st = c.send(command({"CONFIG", "GET", "databases"}), deadline); !st.isOk()) {
      return st;
    }
    if (auto config = readArray(c, deadline); config) {
      if (config->size() == 2 && (*config)[0] == "databases") {
        std::from_chars((*config)[1].data(), (*config)[1].data() + (*config)[1].size(), databases);
      }
    } else if (config.status().code() != StatusCode::kUnavailable) {
      return config.status();  // not an error reply: the connection is out of step
    }
    addInfo(t.address, *info, std::clamp(databases, 0, 1024), out);
    return Status::ok();
  }

  static void addInfo(const std::string& target, const std::string& info, int databases,
                      MetricBatch& out) {
    std::map<std::string, std::string, std::less<>> fields;
    std::vector<std::pair<std::string, std::string>> keyspace;
    std::size_t pos = 0;
    while (pos < info.size()) {
      std::size_t eol = info.find("\r\n", pos);
      if (eol == std::string::npos) {
        eol = info.size();
      }
      const std::string_view line(info.data() + pos, eol - pos);
      pos = eol + 2;
      if (line.empty() || line[0] == '#') {
        continue;
      }
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        continue;
      }
      std::string key(line.substr(0, colon));
      std::string value(line.substr(colon + 1));
      if (key.starts_with("db") && value.starts_with("keys=")) {
        keyspace.emplace_back(key, value);
      } else {
        fields.emplace(std::move(key), std::move(value));
      }
    }
    for (const Field& f : kFields) {
      auto it = fields.find(f.info);
      if (it == fields.end()) {
        continue;
      }
      char* end = nullptr;
      const double v = std::strtod(it->second.c_str(), &end);
      if (end == it->second.c_str()) {
        continue;
      }
      MetricBatch::add(out.family(f.metric, helpFor(f.metric), f.type), {{"target", target}}, v);
    }
    auto label = [&](const char* key) {
      auto it = fields.find(key);
      return it == fields.end() ? std::string() : it->second;
    };
    // redis_exporter 1.45's labels.
    MetricBatch::add(out.family("redis_instance_info", "Information about the Redis instance",
                                MetricType::kGauge),
                     {{"target", target},
                      {"maxmemory_policy", label("maxmemory_policy")},
                      {"os", label("os")},
                      {"process_id", label("process_id")},
                      {"redis_build_id", label("redis_build_id")},
                      {"redis_mode", label("redis_mode")},
                      {"redis_version", label("redis_version")},
                      {"role", label("role")},
                      {"run_id", label("run_id")},
                      {"tcp_port", label("tcp_port")}},
                     1);
    // keys=3,expires=1,avg_ttl=0 for each database with keys; 0 for the others.
    std::map<std::string, std::pair<double, double>> by_db;
    for (int db = 0; db < databases; ++db) {
      by_db["db" + std::to_string(db)] = {0, 0};
    }
    for (const auto& [db, value] : keyspace) {
      double k = 0;
      double e = 0;
      std::sscanf(value.c_str(), "keys=%lf,expires=%lf", &k, &e);
      by_db[db] = {k, e};
    }
    auto& keys = out.family("redis_db_keys", "Total number of keys by DB", MetricType::kGauge);
    auto& expiring = out.family("redis_db_keys_expiring", "Total number of expiring keys by DB",
                                MetricType::kGauge);
    for (const auto& [db, counts] : by_db) {
      MetricBatch::add(keys, {{"db", db}, {"target", target}}, counts.first);
      MetricBatch::add(expiring, {{"db", db}, {"target", target}}, counts.second);
    }
  }

  std::vector<ServiceTarget> targets_;
};

}  // namespace

Result<CollectorPtr> makeRedisCollector(const CollectorSettings& settings, const HostPaths&) {
  for (std::size_t i = 0; i < settings.targets.size(); ++i) {
    if (!settings.targets[i].database.empty()) {
      return invalidArgument("targets[" + std::to_string(i) +
                             "].database: not used by redis (it is for postgres)");
    }
  }
  return CollectorPtr(std::make_unique<RedisCollector>(settings.targets));
}

}  // namespace vigil::collectors
