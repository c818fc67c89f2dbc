#pragma once
// Alertmanager-compatible alerting configuration: the route tree, receivers, inhibit rules and
// time intervals of an alertmanager.yml (or of the `alerting` section of vigil's configuration),
// parsed and validated as Alertmanager 0.25 does, with every error naming file, line and field.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/duration.h"
#include "vigil/metric.h"
#include "vigil/status.h"
#include "vigil/store.h"

namespace vigil::promql {
class Template;
}

namespace vigil::alerting {

/// One matcher in Alertmanager's classic syntax: `name="value"`, `name=~"regex"`, `name!=value`
/// (quotes optional, OpenMetrics escapes inside quotes, surrounding blanks ignored).
Result<LabelMatcher> parseMatcher(std::string_view text);
/// A comma-separated list of matchers, optionally in braces: `{a="b", c=~"d|e"}`.
Result<std::vector<LabelMatcher>> parseMatchers(std::string_view text);
/// `name=~"value"` as Alertmanager prints matchers (OpenMetrics escaping).
std::string matcherString(const LabelMatcher& m);
/// `{a="b",c=~"d"}`: Alertmanager's form of a sorted matcher list (route keys, trees).
std::string matchersString(const std::vector<LabelMatcher>& matchers);
/// Sorts as Alertmanager sorts matchers: by name, then value, then type.
void sortMatchers(std::vector<LabelMatcher>& matchers);
bool matchesAll(const std::vector<LabelMatcher>& matchers, const LabelSet& labels);

struct RouteOptions {
  std::string receiver;
  std::vector<std::string> group_by;  // sorted label names; empty with group_by_all
  bool group_by_all = false;          // group_by: ['...']
  Duration group_wait{30 * 1000};
  Duration group_interval{5 * 60 * 1000};
  Duration repeat_interval{4 * 3600 * 1000};
  std::vector<std::string> mute_time_intervals;
  std::vector<std::string> active_time_intervals;
  /// vigil: an alert notified as firing is notified as resolved even if it was silenced,
  /// inhibited or time-muted meanwhile (route key `resolved_after_mute`, inherited; Alertmanager
  /// does not know the key).
  bool resolved_after_mute = true;
  /// vigil: the escalation policy the route's groups follow (route key `escalation_policy`,
  /// inherited); empty: notifications go to the route's receiver only.
  std::string escalation_policy;
};

struct Route {
  std::vector<LabelMatcher> matchers;  // matchers, match and match_re together, sorted
  RouteOptions options;                // what is not set is inherited from the parent
  bool continue_matching = false;
  std::vector<Route> routes;
  std::string key;  // Alertmanager's route key: the parent's key, "/", the matchers
  int line = 0;     // where the route is in the configuration

  /// The routes an alert with these labels goes to, in tree order: the deepest matching
  /// routes, scanning children in order and stopping at the first match unless it has
  /// `continue: true` (Alertmanager's Route.Match).
  std::vector<const Route*> match(const LabelSet& labels) const;
};

/// `amtool config routes show`'s tree.
std::string routeTreeText(const Route& root);

/// How a notifier talks HTTP: the part of Prometheus's http_config that notifiers use.
/// Credential files are read when a notification is sent, so rotating a token needs no reload.
struct HttpClientConfig {
  std::string auth_type;  // "Bearer" or "Basic"; empty: no Authorization header
  std::string credentials;
  std::string credentials_file;
  std::string basic_username;
  std::string basic_password;
  std::string basic_password_file;
  std::string ca_file;  // tls_config.ca_file: trust these CAs instead of the system's
  bool insecure_skip_verify = false;
  /// vigil: extra request headers (`headers: {X-Team: db}`); Alertmanager 0.25 has none.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// An Alertmanager that vigil forwards its rule alerts to (vigil's `alertmanagers` section), as
/// Prometheus does, so that a cluster-wide Alertmanager can deduplicate across nodes.
struct AlertmanagerTarget {
  std::string url;  // base URL; alerts go to URL/api/v2/alerts
  Duration timeout{10 * 1000};
  HttpClientConfig http;
};

/// One entry of a receiver's webhook_configs.
struct WebhookConfig {
  std::string url;
  bool send_resolved = true;
  int max_alerts = 0;  // 0: no limit; otherwise the rest are counted in truncatedAlerts
  HttpClientConfig http;
};

/// One entry of slack_configs (an incoming webhook).
struct SlackConfig {
  std::string api_url;
  bool send_resolved = false;  // Alertmanager's default for Slack
  std::string channel;
  std::string username;
  std::string icon_emoji;
  std::string icon_url;
  std::string title;  // templates; empty: vigil's default message
  std::string title_link;
  std::string text;
  /// The bar beside the message (a template): good, warning, danger or #RRGGBB; empty:
  /// danger while anything fires, good once resolved, as Alertmanager's default.
  std::string color;
  std::string pretext;   // template: a line above the message
  std::string footer;    // template: a line below it
  std::string fallback;  // template: the notification's plain text; empty: the title
  struct Field {
    std::string title;  // templates
    std::string value;
  };
  std::vector<Field> fields;  // extra fields beside alert name, severity, status and receiver
  HttpClientConfig http;
};

/// One entry of opsgenie_configs (OpsGenie's Alert API, as Alertmanager 0.25 calls it): an
/// alert per group, its alias the group key's SHA-256, created while anything fires and closed
/// once resolved.
struct OpsGenieConfig {
  /// The API's base URL (ending in "/"): the global opsgenie_api_url unless set.
  std::string api_url;
  bool send_resolved = true;
  /// Templates; empty message: vigil's default title, empty source: the external URL.
  std::string message;
  std::string description;
  std::string source;
  std::string tags;     // comma-separated
  std::string actions;  // comma-separated
  std::string note;
  std::string priority;  // P1..P5 once expanded
  std::string entity;
  std::vector<std::pair<std::string, std::string>> details;  // over the common labels
  struct Responder {
    std::string id, name, username, type;  // templates
  };
  std::vector<Responder> responders;
  /// After each create, also set the message and description of the alert OpsGenie already
  /// has (which a create with the same alias leaves as they were), as Alertmanager does.
  bool update_alerts = false;
  HttpClientConfig http;  // the API key goes out as "Authorization: GenieKey KEY"
};

/// One entry of pagerduty_configs (Events API v2).
struct PagerDutyConfig {
  std::string routing_key;
  std::string url;  // the global pagerduty_url unless set
  bool send_resolved = true;
  std::string severity;  // template; empty: from the severity label (critical, error, ...)
  std::string client = "vigil";
  std::string client_url;
  std::string description;  // template for the summary; empty: vigil's default
  std::string component;
  std::string group;
  std::string class_;
  HttpClientConfig http;
};

/// vigil: one entry of file_configs: every notification appended to `path` as a JSON line
/// (the webhook payload), for setups without any receiver.
struct FileConfig {
  std::string path;
  bool send_resolved = true;
};

struct Receiver {
  std::string name;
  /// The integrations configured (webhook_configs, slack_configs, ...), by key, in order.
  std::vector<std::string> integrations;
  std::vector<WebhookConfig> webhooks;
  std::vector<SlackConfig> slack;
  std::vector<PagerDutyConfig> pagerduty;
  std::vector<OpsGenieConfig> opsgenie;
  std::vector<FileConfig> files;
  /// vigil: the escalation policy of groups sent to this receiver, unless their route names
  /// one.
  std::string escalation_policy;
  int line = 0;
};

struct InhibitRule {
  std::vector<LabelMatcher> source_matchers;
  std::vector<LabelMatcher> target_matchers;
  std::vector<std::string> equal;
  int line = 0;
};

/// One entry of a time interval: every part that is given must contain the instant.
struct TimeSpec {
  struct Range {
    int begin = 0;
    int end = 0;  // inclusive, except for times (minutes of the day), where it is exclusive
  };
  std::vector<Range> times;          // minutes of the day, [begin, end)
  std::vector<Range> weekdays;       // 0 = Sunday
  std::vector<Range> days_of_month;  // 1..31, or negative from the end (-1 = last day)
  std::vector<Range> months;         // 1..12
  std::vector<Range> years;
  std::string location = "UTC";
};

struct TimeInterval {
  std::string name;
  std::vector<TimeSpec> specs;  // the interval is active when any spec is
  int line = 0;

  /// Whether the instant (ms since the epoch) is in the interval, each spec read in its own
  /// time zone.
  bool contains(int64_t t_ms) const;
};

/// Whether `name` is "UTC", "Local" or a zone of the system's tz database.
bool knownTimeZone(const std::string& name);

/// One level of an escalation policy: who is notified, and how long nobody may acknowledge
/// before the next level is.
struct EscalationLevel {
  std::vector<std::string> receivers;  // notified together
  Duration escalate_after{0};          // 0 on the last level: nothing follows but repeats
  /// When set, the level notifies only inside one of these time intervals; outside, it is
  /// skipped and the next level is notified at once (e.g. the team channel in business hours).
  std::vector<std::string> active_time_intervals;
  int line = 0;
};

/// vigil: an escalation policy (`escalation_policies` in the alerting configuration), after
/// PagerDuty's: levels notified one after the other until someone acknowledges or the group
/// resolves, then the whole policy again up to `repeat` times, each time after a longer wait.
struct EscalationPolicy {
  std::string name;
  std::vector<EscalationLevel> levels;
  int repeat = 0;  // runs of the policy after the first
  /// The wait after the last level before a repeat: the last level's escalate_after (or
  /// repeat_wait when set), multiplied by repeat_backoff for each repeat, at most
  /// repeat_max_wait.
  Duration repeat_wait{0};
  double repeat_backoff = 2.0;
  Duration repeat_max_wait{4 * 3600 * 1000};
  /// How long an acknowledgement holds when the request gives no expiry (PagerDuty: 30 min).
  Duration ack_timeout{30 * 60 * 1000};
  int line = 0;
};

/// vigil: flap damping (`flap_detection` in the alerting configuration); see flap.h.
struct FlapSettings {
  bool enabled = true;
  int threshold = 3;                // state changes...
  Duration window{30 * 60 * 1000};  // ...within this long make an alert flapping
  Duration hold{15 * 60 * 1000};    // a flapping alert resolves after this long unchanged
};

struct AlertingConfig {
  Duration resolve_timeout{5 * 60 * 1000};
  std::string slack_api_url;  // global defaults for the receivers
  std::string pagerduty_url = "https://events.pagerduty.com/v2/enqueue";
  std::string opsgenie_api_url = "https://api.opsgenie.com/";
  std::string opsgenie_api_key;  // inline or read from opsgenie_api_key_file
  HttpClientConfig http;
  Route route;
  std::vector<Receiver> receivers;
  std::vector<InhibitRule> inhibit_rules;
  std::vector<TimeInterval> time_intervals;
  std::vector<EscalationPolicy> escalation_policies;
  FlapSettings flap;
  std::vector<std::string> templates;  // globs of template files, as written
  /// The named templates ({{define}}) of the files `templates` matched, which receivers'
  /// templates run with {{template "name" .}}; null without any.
  std::shared_ptr<const promql::Template> template_library;
  std::string original;  // the document as read, for /api/v2/status

  const Receiver* receiver(std::string_view name) const;
  const TimeInterval* timeInterval(std::string_view name) const;
  const EscalationPolicy* escalationPolicy(std::string_view name) const;
};

struct AlertingConfigResult {
  std::optional<AlertingConfig> config;
  std::vector<SourceError> errors;
};

/// A template file that could not be read or parsed: the index of the glob that matched it,
/// and what is wrong, naming the file.
struct TemplateFileError {
  std::size_t glob = 0;
  std::string message;
};

/// Alertmanager's `templates`: the files each glob matches (relative ones from `base_dir`),
/// read in the order of the globs and of their sorted matches, their {{define}}s gathered into
/// one library in which a later definition of a name wins. A glob that matches nothing is no
/// error, as in Alertmanager. Null when no file was read.
std::shared_ptr<const promql::Template> loadTemplateFiles(const std::vector<std::string>& globs,
                                                          const std::string& base_dir,
                                                          std::vector<TemplateFileError>& errors);

/// Parses an Alertmanager configuration document. `file` names it in errors.
AlertingConfigResult parseAlertingConfig(std::string_view yaml_text, std::string_view file);
/// Reads and parses `path`: an alertmanager.yml, or a vigil configuration whose `alerting`
/// section holds the same keys inline or names one with `config_file`.
AlertingConfigResult loadAlertingConfigFile(const std::string& path);

}  // namespace vigil::alerting
