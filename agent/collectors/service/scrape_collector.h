#pragma once
// Scraping Prometheus endpoints: static targets from Prometheus-style scrape_configs, parsed
// with the text-format parser, labelled job and instance (honor_labels, exported_ prefixes as
// Prometheus does), with up, scrape_duration_seconds, scrape_samples_scraped and
// scrape_series_added per target. A target whose body is malformed, over a limit or slow
// fails alone (up 0) with its error logged; the others are unaffected.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeScrapeCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
