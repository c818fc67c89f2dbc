#pragma once
// What one scrape target's last body looked like and the samples it made. Like Prometheus's
// scrape cache: a target writes the same series the same way nearly every time, so a body laid
// out as the last one is read by its values alone, instead of parsing every label, adding the
// target's labels and relabeling every sample again.

#include <cstdint>
#include <string_view>
#include <vector>

#include "vigil/config.h"
#include "vigil/metric.h"
#include "vigil/status.h"
#include "vigil/text_parser.h"

namespace vigil::collectors {

class ScrapeCache {
 public:
  struct Scraped {
    std::size_t samples = 0;     // sample lines in the body
    std::size_t new_series = 0;  // series not in the previous body
  };

  /// Takes a scraped body: its values alone when it is laid out as the last one (and the
  /// target's labels are the same), else parsed in full, with `target_labels` added (as
  /// honor_labels says) and metric_relabel_configs applied. On error nothing changes.
  Result<Scraped> update(std::string_view body, const ScrapeConfig& config,
                         const LabelSet& target_labels);

  /// The target's samples from the last body taken, ready to store.
  const MetricBatch& samples() const { return samples_; }
  /// Changes (to a fresh MetricBatch::newLayout()) whenever samples()' shape does; 0 before
  /// the first body.
  uint64_t layout() const { return layout_; }

 private:
  TextLayout text_layout_;
  LabelSet target_labels_;
  MetricBatch samples_;
  // Per sample line: family << 32 | sample in samples_, or kDropped by metric relabeling.
  std::vector<uint64_t> positions_;
  std::vector<uint64_t> known_;  // sorted hashes of the last body's series texts
  std::vector<double> values_;   // scratch for the values of a body
  uint64_t layout_ = 0;
};

}  // namespace vigil::collectors
