#include <catch2/catch.hpp>

#include "vigil/alerting/config.h"

using namespace vigil;
using namespace vigil::alerting;

namespace {

std::string firstError(const char* yaml) {
  auto r = parseAlertingConfig(yaml, "am.yml");
  REQUIRE_FALSE(r.errors.empty());
  CHECK_FALSE(r.config.has_value());
  return r.errors[0].toString();
}

}  // namespace

TEST_CASE("Alertmanager matchers: the classic syntax", "[alerting][matchers]") {
  auto m = parseMatcher(R"(  severity = "critical"  )");
  REQUIRE(m.isOk());
  CHECK(m->name() == "severity");
  CHECK(m->type() == MatchType::kEqual);
  CHECK(m->value() == "critical");

  m = parseMatcher("job=~api|web");
  REQUIRE(m.isOk());
  CHECK(m->matches("web"));
  CHECK_FALSE(m->matches("webserver"));  // regexes are anchored at both ends

  m = parseMatcher(R"(msg!="say \"hi\"\n")");
  REQUIRE(m.isOk());
  CHECK(m->type() == MatchType::kNotEqual);
  CHECK(m->value() == "say \"hi\"\n");
  CHECK(matcherString(*m) == R"(msg!="say \"hi\"\n")");

  CHECK(parseMatcher("1abc=x").status().message() == "bad matcher format: 1abc=x");
  CHECK(parseMatcher(R"(a="open)").status().message() ==
        R"(matcher value contains unescaped double quote: "open)");
  CHECK_FALSE(parseMatcher("a=~(").isOk());

  auto list = parseMatchers(R"({team="db", msg="a, b" , env!~"dev|staging",})");
  REQUIRE(list.isOk());
  REQUIRE(list->size() == 3);
  CHECK((*list)[1].value() == "a, b");
  sortMatchers(*list);
  CHECK(matchersString(*list) == R"({env!~"dev|staging",msg="a, b",team="db"})");

  // A missing label matches as the empty string.
  auto empty = parseMatchers(R"(env="", team!~"db")");
  REQUIRE(empty.isOk());
  CHECK(matchesAll(*empty, {{"alertname", "x"}}));
  CHECK_FALSE(matchesAll(*empty, {{"env", "prod"}}));
}

TEST_CASE("Alertmanager routes: inheritance, keys and matching", "[alerting][routes]") {
  auto r = parseAlertingConfig(R"(global:
  resolve_timeout: 2m
route:
  receiver: default
  group_by: [cluster, alertname]
  group_wait: 10s
  routes:
    - matchers: ['env="prod"']
      group_interval: 1m
      mute_time_intervals: [nights]
      routes:
        - match_re: {service: 'db|cache'}
          receiver: db
          group_by: ['...']
    - match: {team: web}
      receiver: web
      continue: true
    - matchers: ['severity=~"crit.*"']
      receiver: pager
receivers:
  - name: default
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:9/hook'}]
  - name: web
  - name: pager
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: '22:00', end_time: '24:00'}]
        weekdays: ['monday:friday']
        location: Europe/Berlin
)",
                               "am.yml");
  for (const auto& e : r.errors) {
    INFO(e.toString());
  }
  REQUIRE(r.config.has_value());
  const AlertingConfig& c = *r.config;
  CHECK(c.resolve_timeout == std::chrono::minutes(2));
  const Route& root = c.route;
  CHECK(root.key == "{}");
  CHECK(root.options.group_wait == std::chrono::seconds(10));
  CHECK(root.options.repeat_interval == std::chrono::hours(4));  // Alertmanager's default
  const Route& prod = root.routes[0];
  CHECK(prod.key == R"({}/{env="prod"})");
  CHECK(prod.options.receiver == "default");                      // inherited
  CHECK(prod.options.group_wait == std::chrono::seconds(10));     // inherited
  CHECK(prod.options.group_interval == std::chrono::minutes(1));  // its own
  CHECK(prod.options.group_by == std::vector<std::string>{"alertname", "cluster"});
  CHECK(prod.options.mute_time_intervals == std::vector<std::string>{"nights"});
  const Route& db = prod.routes[0];
  CHECK(db.key == R"({}/{env="prod"}/{service=~"^(?:db|cache)$"})");
  CHECK(db.options.group_by_all);
  CHECK(db.options.group_interval == std::chrono::minutes(1));
  CHECK(db.options.mute_time_intervals.empty());  // time intervals are not inherited
  CHECK(c.receiver("db")->integrations == std::vector<std::string>{"webhook_configs"});
  REQUIRE(c.time_intervals.size() == 1);
  CHECK(c.time_intervals[0].specs[0].times[0].begin == 22 * 60);
  CHECK(c.time_intervals[0].specs[0].weekdays[0].begin == 1);
  CHECK(c.time_intervals[0].specs[0].weekdays[0].end == 5);

  auto receivers = [&](LabelSet labels) {
    std::sort(labels.begin(), labels.end(),
              [](const Label& a, const Label& b) { return a.name < b.name; });
    std::string out;
    for (const Route* route : root.match(labels)) {
      out += (out.empty() ? "" : ",") + route->options.receiver;
    }
    return out;
  };
  CHECK(receivers({{"env", "prod"}, {"service", "db"}}) == "db");
  CHECK(receivers({{"env", "prod"}, {"service", "web"}}) == "default");  // prod route itself
  CHECK(receivers({{"team", "web"}, {"severity", "critical"}}) == "web,pager");  // continue
  CHECK(receivers({{"team", "web"}}) == "web");
  CHECK(receivers({{"severity", "warning"}}) == "default");  // nothing matched: the root
}

TEST_CASE("Alertmanager configuration errors name file, line and field", "[alerting][config]") {
  CHECK(firstError("route:\n  receiver: nobody\nreceivers:\n  - name: a\n") ==
        "am.yml:2:13: route.receiver: undefined receiver \"nobody\" used in route");
  CHECK(firstError("route:\n  group_by: [a]\nreceivers:\n  - name: a\n") ==
        "am.yml:2:3: route: root route must specify a default receiver");
  CHECK(firstError("route:\n  receiver: a\n  matchers: ['x=\"y\"']\nreceivers:\n  - name: a\n") ==
        "am.yml:2:3: route: root route must not have any matchers");
  CHECK(firstError("route:\n  receiver: a\nreceivers:\n  - name: a\n  - name: a\n") ==
        "am.yml:5:5: receivers[1].name: notification config name \"a\" is not unique");
  CHECK(firstError("route:\n  receiver: a\n  routes:\n    - matchers: ['x=~\"(\"']\n"
                   "receivers:\n  - name: a\n") ==
        "am.yml:4:18: route.routes[0].matchers[0]: invalid regular expression \"(\": missing "
        "closing )");
  CHECK(firstError("route:\n  receiver: a\n  routes:\n    - match_re: {x: '['}\n"
                   "receivers:\n  - name: a\n")
            .starts_with("am.yml:4:21: route.routes[0].match_re.x: invalid regular expression"));
  CHECK(firstError("route:\n  receiver: a\n  group_interval: 0s\nreceivers:\n  - name: a\n") ==
        "am.yml:3:19: route.group_interval: group_interval cannot be zero");
  CHECK(firstError("route:\n  receiver: a\n  group_by: ['...', job]\nreceivers:\n  - name: a\n") ==
        "am.yml:3:13: route.group_by: cannot have wildcard group_by (`...`) and other labels at "
        "the same time");
  CHECK(firstError("route:\n  receiver: a\n  routes:\n    - recevier: a\nreceivers:\n  - name: a\n")
            .starts_with("am.yml:4:7: route.routes[0].recevier: unknown key"));
  CHECK(firstError("route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [x]\n"
                   "receivers:\n  - name: a\n") ==
        "am.yml:4:28: route.routes[0].mute_time_intervals: undefined time interval \"x\" used "
        "in route");
  CHECK(firstError("route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: t\n"
                   "    time_intervals:\n      - weekdays: ['friday:monday']\n") ==
        "am.yml:8:19: time_intervals[0].time_intervals[0].weekdays: invalid range "
        "\"friday:monday\"");
  CHECK(firstError("route:\n  receiver: a\nreceivers:\n  - name: a\ntime_intervals:\n  - name: t\n"
                   "    time_intervals:\n      - location: Mars/Olympus\n") ==
        "am.yml:8:19: time_intervals[0].time_intervals[0].location: unknown time zone "
        "\"Mars/Olympus\"");
  CHECK(firstError("receivers:\n  - name: a\n") ==
        "am.yml:1:1: route: no route provided in config");
  CHECK(firstError("route: [\n").starts_with("am.yml:"));
}

TEST_CASE("Receivers: webhook, Slack, PagerDuty, OpsGenie and file configurations",
          "[alerting][config]") {
  auto r = parseAlertingConfig(R"(global:
  slack_api_url: 'https://hooks.slack.example/T0/B0/x'
  opsgenie_api_key: globalkey
  http_config:
    authorization: {credentials: globaltoken}
route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: 'https://hooks.example/alerts'
        max_alerts: 10
        http_config:
          basic_auth: {username: vigil, password: pw}
          tls_config: {insecure_skip_verify: true}
          headers: {X-Team: db}
      - url: 'http://127.0.0.1:9/plain'
    slack_configs:
      - channel: '#db'
        title: '{{ .CommonLabels.alertname }} fired'
        color: '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}'
        pretext: above
        footer: below
        fallback: '{{ .Status }}'
        fields:
          - {title: Cluster, value: '{{ .CommonLabels.cluster }}', short: true}
    pagerduty_configs:
      - routing_key: abc123
        severity: critical
    opsgenie_configs:
      - priority: P2
        api_url: 'http://127.0.0.1:9/og'
      - api_key: own
    file_configs:
      - path: /tmp/notifications.jsonl
        send_resolved: false
)",
                               "am.yml");
  INFO((r.errors.empty() ? "" : r.errors[0].toString()));
  REQUIRE(r.config);
  const Receiver* team = r.config->receiver("team");
  REQUIRE(team->webhooks.size() == 2);
  CHECK(team->webhooks[0].max_alerts == 10);
  CHECK(team->webhooks[0].http.auth_type == "Basic");
  CHECK(team->webhooks[0].http.basic_username == "vigil");
  CHECK(team->webhooks[0].http.insecure_skip_verify);
  CHECK(team->webhooks[0].http.headers ==
        std::vector<std::pair<std::string, std::string>>{{"X-Team", "db"}});
  // Without its own http_config a receiver uses the global one.
  CHECK(team->webhooks[1].http.auth_type == "Bearer");
  CHECK(team->webhooks[1].http.credentials == "globaltoken");
  REQUIRE(team->slack.size() == 1);
  CHECK(team->slack[0].api_url == "https://hooks.slack.example/T0/B0/x");  // from global
  CHECK_FALSE(team->slack[0].send_resolved);                               // Alertmanager's default
  CHECK(team->slack[0].channel == "#db");
  CHECK(team->slack[0].color == R"({{ if eq .Status "firing" }}danger{{ else }}good{{ end }})");
  CHECK(team->slack[0].pretext == "above");
  CHECK(team->slack[0].footer == "below");
  CHECK(team->slack[0].fallback == "{{ .Status }}");
  REQUIRE(team->slack[0].fields.size() == 1);
  CHECK(team->slack[0].fields[0].title == "Cluster");
  CHECK(team->slack[0].fields[0].value == "{{ .CommonLabels.cluster }}");
  REQUIRE(team->pagerduty.size() == 1);
  CHECK(team->pagerduty[0].url == "https://events.pagerduty.com/v2/enqueue");
  CHECK(team->pagerduty[0].routing_key == "abc123");
  CHECK(team->pagerduty[0].send_resolved);
  // OpsGenie: the global key unless one of its own; the URL ends in "/" for the API's paths.
  REQUIRE(team->opsgenie.size() == 2);
  CHECK(team->opsgenie[0].api_url == "http://127.0.0.1:9/og/");
  CHECK(team->opsgenie[0].http.auth_type == "GenieKey");
  CHECK(team->opsgenie[0].http.credentials == "globalkey");
  CHECK(team->opsgenie[0].priority == "P2");
  CHECK(team->opsgenie[1].api_url == "https://api.opsgenie.com/");
  CHECK(team->opsgenie[1].http.credentials == "own");
  CHECK(team->opsgenie[1].send_resolved);
  REQUIRE(team->files.size() == 1);
  CHECK_FALSE(team->files[0].send_resolved);
}

TEST_CASE("Receivers: configuration errors name the field", "[alerting][config]") {
  const std::string head = "route:\n  receiver: a\nreceivers:\n  - name: a\n";
  auto err = [&](const std::string& tail) { return firstError((head + tail).c_str()); };
  CHECK(err("    slack_configs: [{channel: '#x'}]\n") ==
        "am.yml:5:21: receivers[0].slack_configs[0]: one of api_url or api_url_file must be "
        "configured");
  CHECK(err("    pagerduty_configs: [{service_key: x}]\n") ==
        "am.yml:5:39: receivers[0].pagerduty_configs[0].service_key: the Events API v1 is not "
        "supported; use routing_key (Events API v2)");
  CHECK(err("    pagerduty_configs: [{url: 'http://127.0.0.1:9/'}]\n") ==
        "am.yml:5:25: receivers[0].pagerduty_configs[0]: one of routing_key or routing_key_file "
        "must be configured");
  CHECK(err("    slack_configs: [{api_url: 'http://127.0.0.1:9/', fields: [{title: x}]}]\n") ==
        "am.yml:5:63: receivers[0].slack_configs[0].fields[0]: a field needs a title and a value");
  CHECK(err("    slack_configs: [{api_url: 'http://127.0.0.1:9/', color: '{{ if }}'}]\n") ==
        "am.yml:5:61: receivers[0].slack_configs[0].color: template: missing value for if");
  CHECK(err("    opsgenie_configs: [{api_url: 'http://127.0.0.1:9/'}]\n") ==
        "am.yml:5:24: receivers[0].opsgenie_configs[0]: one of api_key or api_key_file must be "
        "configured");
  CHECK(err("    opsgenie_configs: [{api_key: k, responders: [{type: team}]}]\n") ==
        "am.yml:5:50: receivers[0].opsgenie_configs[0].responders[0]: has to have at least one "
        "of id, username or name specified");
  CHECK(err("    opsgenie_configs: [{api_key: k, responders: [{name: x, type: crew}]}]\n") ==
        "am.yml:5:66: receivers[0].opsgenie_configs[0].responders[0].type: opsGenie responder "
        "type \"crew\" is not one of team, teams, user, escalation, schedule");
  CHECK(err("    opsgenie_configs: [{api_key: k, details: {a: '{{ .X '}}]\n") ==
        "am.yml:5:50: receivers[0].opsgenie_configs[0].details.a: template: unclosed action "
        "(missing }})");
  CHECK(err("    slack_configs: [{api_url: 'http://127.0.0.1:9/', title: '{{ .X '}]\n") ==
        "am.yml:5:61: receivers[0].slack_configs[0].title: template: unclosed action (missing }})");
  CHECK(err("    webhook_configs:\n      - url: 'http://127.0.0.1:9/'\n        http_config:\n"
            "          bearer_token_file: /nonexistent/token\n")
            .starts_with("am.yml:8:30: receivers[0].webhook_configs[0].http_config."
                         "bearer_token_file: cannot read file"));
  CHECK(err("    webhook_configs:\n      - url: 'http://127.0.0.1:9/'\n        http_config:\n"
            "          authorization: {credentials: a}\n          basic_auth: {username: b}\n") ==
        "am.yml:9:23: receivers[0].webhook_configs[0].http_config.basic_auth: at most one of "
        "basic_auth, authorization and bearer_token must be set");
  CHECK(err("    webhook_configs:\n      - url: 'http://127.0.0.1:9/'\n        http_config:\n"
            "          headers: {'Bad Header': x}\n") ==
        "am.yml:8:21: receivers[0].webhook_configs[0].http_config.headers.Bad Header: not a "
        "valid HTTP header name");
  CHECK(err("    file_configs: [{send_resolved: true}]\n") ==
        "am.yml:5:20: receivers[0].file_configs[0].path: a file path must be configured");
}
