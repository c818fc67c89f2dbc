#include "queue.h"

#include "wire.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "vigil/clock.h"
#include "vigil/exporters/http_client.h"
#include "vigil/thread_name.h"

namespace vigil::exporters {

namespace {

// Samples are read again this far back on every cycle, so that one stamped before the previous
// read but appended after it (a slow scrape, a long rule evaluation) is still sent.
constexpr int64_t kLateAppendSlackMs = 60'000;
// After an outage the backlog is read in steps of this much time, so that memory stays bounded
// by what one step holds rather than by the length of the outage.
constexpr int64_t kMaxReadWindowMs = 5 * 60'000;
// A 4xx batch is retried series by series (so that one bad series costs only itself); if this
// many single-series requests in a row are rejected too, the receiver rejects everything and
// the rest of the batch is dropped without more requests.
constexpr int kMaxRejectedSingles = 3;

std::string shortHash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h = (h ^ c) * 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 6);
}

}  // namespace

EndpointQueue::EndpointQueue(const Store& store, RemoteWriteConfig config, LabelSet external_labels,
                             int64_t position, MetadataSource metadata,
                             std::function<void()> on_progress)
    : store_(store),
      config_(std::move(config)),
      external_labels_(std::move(external_labels)),
      metadata_(std::move(metadata)),
      on_progress_(std::move(on_progress)),
      floor_(position),
      read_from_(position),
      position_(position),
      shards_(config_.queue.min_shards) {
  remote_name_ = config_.name.empty() ? shortHash(config_.url) : config_.name;
  UrlParts url = splitUrl(config_.url);
  origin_ = std::move(url.origin);
  path_ = std::move(url.path);
  highest_sent_ms_ = position;
}

EndpointQueue::~EndpointQueue() { stop(); }

void EndpointQueue::start() {
  thread_ = std::thread([this] {
    nameThisThread("rw-queue");
    run();
  });
}

void EndpointQueue::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  {
    // Requests in flight are cut short rather than waited for.
    std::lock_guard lock(clients_mu_);
    for (auto& c : clients_) {
      if (c) {
        c->cancel();
      }
    }
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool EndpointQueue::sleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

void EndpointQueue::run() {
  // A cycle at least every second keeps the lag short; batch_send_deadline can shorten it.
  const auto period = std::min<std::chrono::milliseconds>(config_.queue.batch_send_deadline,
                                                          std::chrono::seconds(1));
  while (true) {
    const auto started = std::chrono::steady_clock::now();
    if (config_.metadata.send && metadata_ &&
        unixNowMs() - last_metadata_ms_ >= config_.metadata.send_interval.count()) {
      sendMetadata();
    }
    cycle();
    {
      std::unique_lock lock(mu_);
      if (stopping_) {
        return;
      }
    }
    on_progress_();
    const auto spent = std::chrono::steady_clock::now() - started;
    if (!sleepUnlessStopped(std::chrono::duration_cast<std::chrono::milliseconds>(
            std::max<std::chrono::steady_clock::duration>(period - spent,
                                                          std::chrono::milliseconds(1))))) {
      return;
    }
  }
}

int EndpointQueue::desiredShards(std::size_t batches) const {
  // Enough shards to send this cycle's batches within about a second at the measured request
  // time, so that a backlog after an outage fans out and a trickle stays on min_shards. Growth
  // is at most twofold per cycle and none while requests are failing: more connections do
  // not help a receiver that is already struggling, they make its latency — and so the
  // estimate — worse.
  const double seconds = static_cast<double>(batches) * request_seconds_ewma_;
  int want = std::max(static_cast<int>(std::ceil(seconds / 1.0)), 1);
  const int current = shards_.load();
  want = std::min(want, failures_last_cycle_ ? current : current * 2);
  return std::clamp(want, config_.queue.min_shards, config_.queue.max_shards);
}

void EndpointQueue::cycle() {
  const int64_t now = unixNowMs();
  // Smaller steps back (slewing) need nothing: the next cycles catch up.
  if (read_from_ - now > kClockStepTolerance.count()) {
    // The wall clock went back (and vigil drops the store's samples from after the new time):
    // everything read so far counts as read up to now only, or no sample would go out until
    // the clock caught up with the old one.
    read_from_ = now;
    floor_ = std::min(floor_, now);
    for (KnownSeries& k : known_) {
      k.sent_through = std::min(k.sent_through, now);
    }
  }
  int64_t hi = now;
  if (hi - read_from_ > kMaxReadWindowMs) {
    hi = read_from_ + kMaxReadWindowMs;
  }
  const int64_t lo = std::max(read_from_ - kLateAppendSlackMs, floor_) + 1;

  // What goes out: each series' samples newer than what was taken of it, under its outgoing
  // labels (external labels added, write relabeling applied), worked out once per series.
  struct Work {
    const std::string* label_bytes;
    uint64_t hash;
    std::size_t first;  // into `samples`
    std::size_t count;
  };
  std::vector<Work> work;
  std::vector<Sample> samples;
  int64_t newest = 0;
  KnownSeries* current = nullptr;
  store_.scan(
      lo, hi,
      [&](uint32_t slot, uint64_t hash) {
        if (slot >= known_.size()) {
          known_.resize(std::max<std::size_t>(slot + 1, known_.size() * 3 / 2));
        }
        current = &known_[slot];
        if (!current->used || current->hash != hash) {
          // A series new to the queue (or a slot the store reused for another series).
          *current = KnownSeries{hash, floor_, false, nullptr, true};
        }
        return current->sent_through;
      },
      [&](uint64_t hash, std::span<const Sample> fresh, const std::function<LabelSet()>& labels) {
        KnownSeries& k = *current;
        k.sent_through = fresh.back().t;
        newest = std::max(newest, fresh.back().t);
        if (!k.resolved) {
          k.resolved = true;
          LabelSet out = labels();
          // An empty label is no label in Prometheus; receivers must not get one.
          std::erase_if(out, [](const Label& l) { return l.value.empty(); });
          for (const Label& ext : external_labels_) {
            auto pos =
                std::lower_bound(out.begin(), out.end(), ext.name,
                                 [](const Label& l, const std::string& n) { return l.name < n; });
            if (pos == out.end() || pos->name != ext.name) {
              out.insert(pos, ext);
            }
          }
          bool keep = relabel(config_.write_relabel_configs, out);
          keep = keep && std::any_of(out.begin(), out.end(),
                                     [](const Label& l) { return l.name == kMetricNameLabel; });
          if (keep) {
            k.label_bytes = std::make_unique<const std::string>(encodeLabels(out));
          }
        }
        if (!k.label_bytes) {
          samples_filtered_ += fresh.size();
          return;
        }
        work.push_back({k.label_bytes.get(), hash, samples.size(), fresh.size()});
        samples.insert(samples.end(), fresh.begin(), fresh.end());
      });
  const std::size_t total = samples.size();
  if (newest > 0) {
    newest_read_ms_ = std::max(newest_read_ms_.load(), newest);
  }

  // Batches of up to max_samples_per_send per shard; a series stays on its shard, so its
  // samples go out in order.
  const std::size_t per_send = config_.queue.max_samples_per_send;
  const int shards = desiredShards((total + per_send - 1) / std::max<std::size_t>(per_send, 1));
  shards_ = shards;
  std::vector<std::vector<SeriesPart>> by_shard(static_cast<std::size_t>(shards));
  for (const Work& w : work) {
    by_shard[w.hash % static_cast<uint64_t>(shards)].push_back(
        {w.label_bytes, samples.data() + w.first, w.count});
  }
  pending_samples_ = static_cast<int64_t>(total);
  std::vector<ShardStats> stats(static_cast<std::size_t>(shards));
  std::vector<std::thread> threads;
  for (int k = 1; k < shards; ++k) {
    const auto i = static_cast<std::size_t>(k);
    if (!by_shard[i].empty()) {
      threads.emplace_back([this, k, i, &by_shard, &stats] {
        nameThisThread("rw-shard", k);
        sendShard(k, by_shard[i], stats[i]);
      });
    }
  }
  sendShard(0, by_shard[0], stats[0]);
  for (auto& t : threads) {
    t.join();
  }
  ShardStats all;
  for (const ShardStats& st : stats) {
    all.ok_seconds += st.ok_seconds;
    all.ok += st.ok;
    all.failures += st.failures;
  }
  if (all.ok > 0) {
    const double mean = all.ok_seconds / all.ok;
    request_seconds_ewma_ =
        request_seconds_ewma_ == 0 ? mean : 0.7 * request_seconds_ewma_ + 0.3 * mean;
  }
  failures_last_cycle_ = all.failures > 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;  // what was not acknowledged is read again from the store at the next start
    }
  }
  read_from_ = hi;
  position_ = hi;
  pending_samples_ = 0;
}

void EndpointQueue::sendShard(int shard, std::span<const SeriesPart> parts, ShardStats& stats) {
  const std::size_t per_send = std::max<std::size_t>(config_.queue.max_samples_per_send, 1);
  std::vector<SeriesPart> batch;
  std::size_t in_batch = 0;
  auto flush = [&]() -> bool {
    if (batch.empty()) {
      return true;
    }
    const std::string body = encodeParts(batch);
    Response rejection;
    Outcome outcome = sendWithRetries(shard, body, in_batch, &rejection, stats);
    if (outcome == Outcome::kSent) {
      int64_t newest = 0;
      for (const SeriesPart& p : batch) {
        newest = std::max(newest, p.samples[p.count - 1].t);
      }
      int64_t seen = highest_sent_ms_.load();
      while (newest > seen && !highest_sent_ms_.compare_exchange_weak(seen, newest)) {
      }
    }
    if (outcome == Outcome::kRejected && batch.size() > 1) {
      // One bad series (an invalid label, a sample the receiver has already) must not cost
      // the others: retry them one by one.
      spdlog::warn(
          "remote write batch rejected, retrying its series one by one remote_name={} "
          "status={} detail=\"{}\"",
          remote_name_, rejection.status, rejection.detail);
      int rejected_in_a_row = 0;
      for (const SeriesPart& p : batch) {
        if (rejected_in_a_row >= kMaxRejectedSingles) {
          samples_dropped_ += p.count;
          continue;
        }
        const std::string one = encodeParts(std::span<const SeriesPart>(&p, 1));
        Outcome o = sendWithRetries(shard, one, p.count, &rejection, stats);
        if (o == Outcome::kStopped) {
          return false;
        }
        if (o == Outcome::kRejected) {
          samples_dropped_ += p.count;
          ++rejected_in_a_row;
        } else {
          rejected_in_a_row = 0;
        }
      }
    } else if (outcome == Outcome::kRejected) {
      samples_dropped_ += in_batch;
      spdlog::warn("remote write samples dropped remote_name={} samples={} status={} detail=\"{}\"",
                   remote_name_, in_batch, rejection.status, rejection.detail);
    } else if (outcome == Outcome::kStopped) {
      return false;
    }
    batch.clear();
    in_batch = 0;
    return true;
  };
  for (SeriesPart p : parts) {
    while (p.count > 0) {
      const std::size_t take = std::min(p.count, per_send - in_batch);
      batch.push_back({p.label_bytes, p.samples, take});
      in_batch += take;
      p.samples += take;
      p.count -= take;
      if (in_batch >= per_send && !flush()) {
        return;
      }
    }
  }
  flush();
}

EndpointQueue::Outcome EndpointQueue::sendWithRetries(int shard, const std::string& body,
                                                      std::size_t samples, Response* rejection,
                                                      ShardStats& stats) {
  auto backoff = config_.queue.min_backoff;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        return Outcome::kStopped;
      }
    }
    const auto started = std::chrono::steady_clock::now();
    Response r = post(shard, body);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    request_micros_ += static_cast<uint64_t>(seconds * 1e6);
    if (r.status >= 200 && r.status < 300) {
      stats.ok_seconds += seconds;
      ++stats.ok;
      ++requests_ok_;
      samples_sent_ += samples;
      pending_samples_ -= static_cast<int64_t>(samples);
      bytes_sent_ += body.size();
      return Outcome::kSent;
    }
    const bool retriable =
        r.status == 0 || r.status >= 500 || (r.status == 429 && config_.queue.retry_on_http_429);
    if (!retriable) {
      ++requests_rejected_;
      pending_samples_ -= static_cast<int64_t>(samples);
      *rejection = std::move(r);
      return Outcome::kRejected;
    }
    ++requests_retried_;
    ++stats.failures;
    samples_retried_ += samples;
    spdlog::debug("remote write failed, retrying remote_name={} status={} detail=\"{}\"",
                  remote_name_, r.status, r.detail);
    auto wait = std::max(backoff, r.retry_after);
    if (!sleepUnlessStopped(wait)) {
      return Outcome::kStopped;
    }
    backoff = std::min(backoff * 2, config_.queue.max_backoff);
  }
}

EndpointQueue::Response EndpointQueue::post(int shard, const std::string& body) {
  HttpClient* client = nullptr;
  {
    std::lock_guard lock(clients_mu_);
    if (clients_.size() <= static_cast<std::size_t>(shard)) {
      clients_.resize(static_cast<std::size_t>(shard) + 1);
    }
    auto& slot = clients_[static_cast<std::size_t>(shard)];
    if (!slot) {
      slot = std::make_unique<HttpClient>(origin_, config_.http, config_.remote_timeout);
    }
    client = slot.get();
  }
  HttpHeaders headers{{"User-Agent", "vigil"},
                      {"Content-Encoding", "snappy"},
                      {"X-Prometheus-Remote-Write-Version", "0.1.0"}};
  Response r;
  if (Status st = addConfiguredHeaders(config_.http, headers); !st.isOk()) {
    r.detail = st.message();  // a credentials file being rotated: retried
    return r;
  }
  auto res = client->post(path_, headers, body, "application/x-protobuf");
  if (!res) {
    r.detail = res.status().message();
    return r;
  }
  r.status = res->status;
  r.detail = res->body.substr(0, 256);
  while (!r.detail.empty() && (r.detail.back() == '\n' || r.detail.back() == '\r')) {
    r.detail.pop_back();
  }
  r.retry_after = parseRetryAfter(res->retry_after);
  return r;
}

void EndpointQueue::sendMetadata() {
  std::vector<MetricMetadata> all = metadata_();
  if (all.empty()) {
    return;  // nothing collected yet: try again at the next cycle
  }
  last_metadata_ms_ = unixNowMs();
  const std::size_t per_send = std::max<std::size_t>(config_.metadata.max_samples_per_send, 1);
  for (std::size_t i = 0; i < all.size(); i += per_send) {
    const std::size_t n = std::min(all.size(), i + per_send) - i;
    const std::string body = encodeMetadata(std::span<const MetricMetadata>(all.data() + i, n));
    // Metadata is sent again at the next interval, so a failure is counted, not retried.
    Response r = post(0, body);
    if (r.status >= 200 && r.status < 300) {
      metadata_sent_ += n;
      bytes_sent_ += body.size();
    } else {
      metadata_dropped_ += n;
    }
  }
}

void EndpointQueue::appendStats(MetricBatch& out) const {
  const LabelSet base{{"remote_name", remote_name_}, {"url", config_.url}};
  auto with = [&](std::string name, std::string value) {
    LabelSet l = base;
    l.push_back({std::move(name), std::move(value)});
    return l;
  };
  auto& samples = out.family("vigil_remote_write_samples_total",
                             "Samples by outcome: sent (acknowledged), retried (a failed attempt, "
                             "sent again), dropped (rejected by the receiver with a 4xx), "
                             "filtered (dropped by write_relabel_configs).",
                             MetricType::kCounter);
  MetricBatch::add(samples, with("result", "sent"), static_cast<double>(samples_sent_.load()));
  MetricBatch::add(samples, with("result", "retried"),
                   static_cast<double>(samples_retried_.load()));
  MetricBatch::add(samples, with("result", "dropped"),
                   static_cast<double>(samples_dropped_.load()));
  MetricBatch::add(samples, with("result", "filtered"),
                   static_cast<double>(samples_filtered_.load()));
  auto& metadata = out.family("vigil_remote_write_metadata_total",
                              "Metric metadata entries by outcome.", MetricType::kCounter);
  MetricBatch::add(metadata, with("result", "sent"), static_cast<double>(metadata_sent_.load()));
  MetricBatch::add(metadata, with("result", "dropped"),
                   static_cast<double>(metadata_dropped_.load()));
  auto& requests = out.family("vigil_remote_write_requests_total",
                              "Remote-write requests by outcome: success (2xx), retry (5xx, 429, "
                              "connection errors and timeouts), rejected (other 4xx).",
                              MetricType::kCounter);
  MetricBatch::add(requests, with("result", "success"), static_cast<double>(requests_ok_.load()));
  MetricBatch::add(requests, with("result", "retry"),
                   static_cast<double>(requests_retried_.load()));
  MetricBatch::add(requests, with("result", "rejected"),
                   static_cast<double>(requests_rejected_.load()));
  MetricBatch::add(out.family("vigil_remote_write_request_duration_seconds_total",
                              "Time spent in remote-write requests.", MetricType::kCounter),
                   base, static_cast<double>(request_micros_.load()) / 1e6);
  MetricBatch::add(
      out.family("vigil_remote_write_bytes_total",
                 "Compressed bytes of the requests the receiver took.", MetricType::kCounter),
      base, static_cast<double>(bytes_sent_.load()));
  MetricBatch::add(
      out.family("vigil_remote_write_pending_samples",
                 "Samples read from the store and not yet acknowledged.", MetricType::kGauge),
      base, static_cast<double>(std::max<int64_t>(pending_samples_.load(), 0)));
  MetricBatch::add(
      out.family("vigil_remote_write_shards", "Shards (parallel requests) of the current cycle.",
                 MetricType::kGauge),
      base, static_cast<double>(shards_.load()));
  const int64_t position = position_.load();
  MetricBatch::add(
      out.family("vigil_remote_write_highest_sent_timestamp_seconds",
                 "Timestamp of the newest sample the receiver acknowledged.", MetricType::kGauge),
      base, static_cast<double>(highest_sent_ms_.load()) / 1000.0);
  MetricBatch::add(out.family("vigil_remote_write_position_timestamp_seconds",
                              "Every sample up to this time has been acknowledged or dropped; "
                              "after a restart sending resumes from here.",
                              MetricType::kGauge),
                   base, static_cast<double>(position) / 1000.0);
  MetricBatch::add(out.family("vigil_remote_write_lag_seconds",
                              "How far behind now the acknowledged position is (about one cycle "
                              "when the receiver keeps up; it grows during an outage).",
                              MetricType::kGauge),
                   base, std::max<double>(0, static_cast<double>(unixNowMs() - position) / 1000.0));
}

}  // namespace vigil::exporters
