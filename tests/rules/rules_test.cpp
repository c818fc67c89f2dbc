#include <catch2/catch.hpp>

#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/rules/rule_eval.h"
#include "vigil/rules/rule_file.h"
#include "vigil/rules/template.h"

using namespace vigil;
using namespace vigil::promql;

TEST_CASE("Rule files: every error with file, line and column", "[rules][rulefile]") {
  auto r = parseRuleFile(R"(groups:
  - name: a
    rules:
      - alert: X
        expr: up == 0
        for: 5 minutes
      - record: bad name
        expr: up
      - record: ok
        expr: sum(
        annotations: {a: b}
  - name: a
    rules: []
  - name: b
    rules:
      - alert: Y
        record: Z
        expr: up
      - alert: T
        expr: up
        labels:
          1bad: x
        annotations:
          s: '{{ if }}'
)",
                         "rules.yml");
  std::vector<std::string> errors;
  for (const auto& e : r.errors) {
    errors.push_back(e.toString());
  }
  INFO(Catch::Detail::stringify(errors));
  REQUIRE(errors.size() == 8);
  CHECK(errors[0] ==
        "rules.yml:6:14: groups[0].rules[0].for: invalid duration \"5 minutes\": "
        "unknown unit \" minutes\" (use Prometheus syntax such as 15s, 5m or 1h30m)");
  CHECK(errors[1] ==
        "rules.yml:7:17: groups[0].rules[1].record: invalid recording rule name "
        "\"bad name\"");
  CHECK(errors[2] == "rules.yml:10:19: groups[0].rules[2].expr: unexpected end of input");
  CHECK(errors[3] ==
        "rules.yml:11:22: groups[0].rules[2].annotations: invalid field "
        "'annotations' in recording rule");
  CHECK(errors[4] ==
        "rules.yml:12:11: groups[1].name: groupname: \"a\" is repeated in the same "
        "file");
  CHECK_THAT(errors[5], Catch::StartsWith("rules.yml:16:9: groups[2].rules[0]: exactly one of"));
  CHECK(errors[6] == "rules.yml:22:11: groups[2].rules[1].labels: invalid label name: 1bad");
  CHECK_THAT(errors[7], Catch::StartsWith("rules.yml:24:14: groups[2].rules[1].annotations.s: "
                                          "template: missing value for if"));
}

TEST_CASE("Templates: what Prometheus alert templates use", "[rules][template]") {
  LabelSet labels{{"instance", "web-1"}, {"job", "api"}};
  std::map<std::string, std::string> external{{"cluster", "eu"}};
  TemplateData data{&labels, 0.4567, &external};
  auto run = [&](const std::string& text) {
    auto t = Template::parse(text);
    INFO(text);
    REQUIRE(t.isOk());
    auto out = t->execute(data);
    REQUIRE(out.isOk());
    return *out;
  };
  CHECK(run("{{ $labels.instance }} in {{ $externalLabels.cluster }}") == "web-1 in eu");
  CHECK(run("{{ .Labels.job }} {{ .Value }}") == "api 0.4567");
  CHECK(run("{{ $value | humanizePercentage }}") == "45.67%");
  CHECK(run("{{ humanize 1234567 }}") == "1.235M");
  CHECK(run("{{ humanize1024 2048 }}") == "2ki");
  CHECK(run("{{ humanizeDuration 3725 }}") == "1h 2m 5s");
  CHECK(run("{{ printf \"%.2f\" $value }}") == "0.46");
  CHECK(run("{{ $labels.job | toUpper }}") == "API");
  CHECK(run("{{ title \"hello world\" }}") == "Hello World");
  CHECK(run("{{ reReplaceAll \"web-(.*)\" \"host$1\" $labels.instance }}") == "host1");
  CHECK(run("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}") == "low");
  CHECK(run("a {{- \" b \" -}} c") == "a b c");
  CHECK(goFloat(1e6) == "1e+06");
  CHECK(goFloat(123456) == "123456");
  CHECK(goFloat(0.0001) == "0.0001");
  CHECK(goFloat(0.00001) == "1e-05");
  CHECK_FALSE(Template::parse("{{ if $value }}").isOk());
  CHECK_FALSE(Template::parse("{{ range $x }}{{ end }}").isOk());
  CHECK_FALSE(Template::parse("{{ $value").isOk());
}

TEST_CASE("Templates: query results, with, range, variables and parentheses, as Go runs them",
          "[rules][template]") {
  LabelSet labels{{"__name__", "up"}, {"instance", "web-1:9100"}, {"job", "api"}};
  std::map<std::string, std::string> external{{"cluster", "eu"}};
  TemplateQuery query = [](const std::string& expr) -> Result<std::vector<TemplateSample>> {
    if (expr == "none") {
      return std::vector<TemplateSample>{};
    }
    if (expr == "bad(") {
      return invalidArgument("1:5: parse error: unclosed left parenthesis");
    }
    return std::vector<TemplateSample>{{{{"__name__", "load"}, {"host", "b"}}, 2.5},
                                       {{{"__name__", "load"}, {"host", "a"}}, 1234567}};
  };
  TemplateData data{&labels, 0.5, &external};
  data.query = &query;
  auto run = [&](const std::string& text) {
    auto t = Template::parse(text);
    INFO(text << ": " << t.status().message());
    REQUIRE(t.isOk());
    auto out = t->execute(data);
    INFO(out.status().message());
    REQUIRE(out.isOk());
    return *out;
  };
  auto fails = [&](const std::string& text, const TemplateData& with) {
    auto t = Template::parse(text);
    INFO(text << ": " << t.status().message());
    REQUIRE(t.isOk());
    auto out = t->execute(with);
    REQUIRE_FALSE(out.isOk());
    return out.status().message();
  };
  CHECK(run(R"({{ with query "load" }}{{ . | first | value }}{{ end }})") == "2.5");
  CHECK(run(R"({{ with query "none" }}some{{ else }}none{{ end }})") == "none");
  CHECK(
      run(R"({{ range query "load" | sortByLabel "host" }}{{ .Labels.host }}={{ .Value | humanize }} {{ end }})") ==
      "a=1.235M b=2.5 ");
  CHECK(run(R"({{ range $i, $s := query "load" }}{{ $i }}:{{ label "host" $s }};{{ end }})") ==
        "0:b;1:a;");
  CHECK(run(R"({{ range query "none" }}x{{ else }}empty{{ end }})") == "empty");
  CHECK(run(R"({{ (query "load" | first).Labels.host }})") == "b");
  CHECK(run(R"({{ humanize (value (first (query "load"))) }})") == "2.5");
  // A selector built from all of an alert's labels, as the shipped anomaly alert builds it.
  CHECK(
      run(R"({{ $s := "" }}{{ range $k, $v := $labels }}{{ if ne $k "__name__" }}{{ $s = printf "%s%s=%q," $s $k $v }}{{ end }}{{ end }}{{ $s }})") ==
      R"(instance="web-1:9100",job="api",)");
  CHECK(run(R"({{ range $labels }}[{{ . }}]{{ end }})") == "[up][web-1:9100][api]");
  CHECK(
      run(R"({{ if eq $labels.job "db" }}db{{ else if eq $labels.job "api" }}api{{ else }}other{{ end }})") ==
      "api");
  CHECK(run(R"({{ $labels.instance | stripPort }} {{ match "^web" $labels.instance }})") ==
        "web-1 true");
  CHECK(run(R"({{/* a comment */}}{{ len $labels }} {{ index $labels "job" }})") == "3 api");
  CHECK(run(R"({{ printf "%q" "a\"b" }})") == R"("a\"b")");
  CHECK(run(R"({{ printf "%5.1f|%-4s|%03d" 3.14159 "ab" 7 }})") == "  3.1|ab  |007");
  // Widths and precisions past Go's limit are refused, not handed to C's printf (a fuzzer
  // asked for 625 million digits).
  CHECK(run(R"({{ printf "%.2000000f" 1 }})") == "%!(BADPREC)");
  CHECK(run(R"({{ printf "%99999999999999999999d" 1 }})") == "%!(BADWIDTH)");
  CHECK(run(R"({{ .Labels.job }} {{ $.Value }} {{ $externalLabels.cluster }})") == "api 0.5 eu");
  // Errors say what went wrong; the alert shows them instead of the text.
  CHECK_THAT(fails(R"({{ query "none" | first }})", data),
             Catch::Contains("first() called on vector with no elements"));
  CHECK_THAT(fails(R"({{ query "bad(" }})", data), Catch::Contains("parse error"));
  TemplateData without_query{&labels, 0.5, &external};
  CHECK_THAT(fails(R"({{ query "load" }})", without_query),
             Catch::Contains("query is not available"));
  // Go refuses undefined variables when it parses, and a variable ends with its block.
  CHECK_FALSE(Template::parse("{{ $undefined }}").isOk());
  CHECK_FALSE(Template::parse("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}").isOk());
  CHECK_FALSE(Template::parse("{{ $x = 1 }}").isOk());
  CHECK_FALSE(Template::parse("{{ (printf \"x\" }}").isOk());
  CHECK_FALSE(Template::parse("{{ with $value }}").isOk());
  // Named templates: defined at the top level only, run with their own dot and $.
  CHECK_FALSE(Template::parse("{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}").isOk());
  CHECK_FALSE(Template::parse("{{ define \"x\" }}no end").isOk());
  CHECK_FALSE(Template::parse("{{ define x }}{{ end }}").isOk());
  CHECK(run(R"({{ define "where" }}{{ .instance }} ({{ $.job }}){{ end }})"
            R"(on {{ template "where" $labels }})") == "on web-1:9100 (api)");
  // A block may stand inside a define's body or another block's, and defines its name too.
  CHECK(run(R"({{ define "outer" }}<{{ block "inner" .job }}{{ . }}{{ end }}>{{ end }})"
            R"({{ template "outer" $labels }} {{ template "inner" "x" }})") == "<api> x");
  CHECK(
      run(R"({{ block "a" . }}A{{ block "b" 1 }}B{{ . }}{{ end }}{{ end }}-{{ template "b" 2 }})") ==
      "AB1-B2");
  CHECK_FALSE(Template::parse("{{ block \"a\" . }}{{ define \"x\" }}{{ end }}{{ end }}").isOk());
  CHECK_THAT(fails(R"({{ template "missing" . }})", data),
             Catch::Contains("template \"missing\" not defined"));
  CHECK_THAT(
      fails(R"({{ define "loop" }}{{ template "loop" . }}{{ end }}{{ template "loop" . }})", data),
      Catch::Contains("nested too deeply"));
  // Loops in loops stop at a bound instead of running for ever.
  std::string nested;
  for (int i = 0; i < 20; ++i) {
    nested += "{{ range $labels }}";
  }
  nested += "x";
  for (int i = 0; i < 20; ++i) {
    nested += "{{ end }}";
  }
  CHECK_THAT(fails(nested, data), Catch::Contains("stopped after"));
}

TEST_CASE("Alert state machine: pending, firing, keep_firing_for, resolved", "[rules][alerts]") {
  auto store = makeMemStore();
  auto file = parseRuleFile(R"(groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 2m
        keep_firing_for: 1m
)",
                            "r.yml");
  REQUIRE(file.errors.empty());
  GroupEvaluator ev(file.groups[0], *store);
  const LabelSet up{{"__name__", "up"}, {"job", "x"}};
  const double values[] = {1, 0, 0, 0, 1, 1, 1};
  std::vector<AlertState> states;
  for (int i = 0; i < 7; ++i) {
    REQUIRE(store->append(up, i * 60000, values[i]).isOk());
    REQUIRE(ev.evaluate(i * 60000).isOk());
    auto alerts = ev.alerts("Down");
    states.push_back(alerts.empty() ? AlertState::kInactive : alerts[0].state);
  }
  // 0: ok; 1-2: pending (for 2m); 3: firing; 4: kept firing (keep_firing_for 1m); 5: resolved.
  CHECK(states == std::vector<AlertState>{AlertState::kInactive, AlertState::kPending,
                                          AlertState::kPending, AlertState::kFiring,
                                          AlertState::kFiring, AlertState::kInactive,
                                          AlertState::kInactive});
}

TEST_CASE("Rule groups: the limit drops everything past it, as Prometheus does",
          "[rules][alerts]") {
  auto store = makeMemStore();
  auto file = parseRuleFile(R"(groups:
  - name: g
    limit: 1
    rules:
      - alert: Many
        expr: up == 0
      - record: up:copy
        expr: up
)",
                            "r.yml");
  REQUIRE(file.errors.empty());
  GroupEvaluator ev(file.groups[0], *store);
  REQUIRE(store->append({{"__name__", "up"}, {"i", "1"}}, 0, 0).isOk());
  REQUIRE(store->append({{"__name__", "up"}, {"i", "2"}}, 0, 0).isOk());
  Status st = ev.evaluate(0);
  CHECK_THAT(st.message(), Catch::Contains("exceeded limit of 1 with 2 alerts"));
  CHECK(ev.alerts("Many").empty());
  auto copy = parse("up:copy");
  Engine engine(*store);
  auto r = engine.instant(*copy.expr, 0);
  REQUIRE(r.isOk());
  CHECK(std::get<Vector>(*r).empty());
}

TEST_CASE("Rule groups: later rules see what earlier rules wrote in the same cycle",
          "[rules][alerts]") {
  // The first rule reads the selectors the later ones read again after the second and third
  // rules wrote to them: the group's shared store reads must not hide those writes.
  auto store = makeMemStore();
  auto file = parseRuleFile(R"(groups:
  - name: g
    rules:
      - record: seen:before
        expr: count({__name__=~"job:.*|ALERTS"}) or vector(0)
      - record: alerts:before
        expr: count(ALERTS{alertname="Up"}) or vector(0)
      - record: job:up
        expr: up * 2
      - alert: Up
        expr: up > 0
      - record: seen:after
        expr: count({__name__=~"job:.*|ALERTS"})
      - record: alerts:after
        expr: count(ALERTS{alertname="Up"})
)",
                            "r.yml");
  REQUIRE(file.errors.empty());
  GroupEvaluator ev(file.groups[0], *store);
  REQUIRE(store->append({{"__name__", "up"}, {"job", "a"}}, 0, 1).isOk());
  REQUIRE(ev.evaluate(0).isOk());
  Engine engine(*store);
  auto valueOf = [&](const char* q) {
    auto r = engine.instant(*parse(q).expr, 0);
    REQUIRE(r.isOk());
    const auto& v = std::get<Vector>(*r);
    REQUIRE(v.size() == 1);
    return v[0].v;
  };
  CHECK(valueOf("seen:before") == 0);
  CHECK(valueOf("alerts:before") == 0);
  CHECK(valueOf("seen:after") == 2);  // job:up and the pending alert's ALERTS series
  CHECK(valueOf("alerts:after") == 1);
}

TEST_CASE(
    "Rule groups: a subexpression rules share is evaluated once per cycle, and again "
    "after a rule writes a series it reads",
    "[rules][alerts]") {
  const char* rules = R"(groups:
  - name: g
    rules:
      - alert: Warning
        expr: sum by (job) (rate(requests_total[5m])) > 1
      - alert: Critical
        expr: sum by (job) (rate(requests_total[5m])) > 2
      - record: job:requests:rate5m
        expr: sum by (job) (rate(requests_total[5m]))
      - alert: TotalBefore
        expr: sum({__name__=~"job:requests:total|nothing"}) > 0
      - record: job:requests:total
        expr: sum by (job) (requests_total)
      - alert: TotalAfter
        expr: sum({__name__=~"job:requests:total|nothing"}) > 0
      - alert: Page
        expr: sum by (job) (rate(requests_total[5m])) > 3
)";
  // The same rules with sharing and without: the same alerts, with the same values.
  auto run = [&](bool share) {
    auto store = makeMemStore();
    auto file = parseRuleFile(rules, "r.yml");
    REQUIRE(file.errors.empty());
    GroupEvaluator ev(file.groups[0], *store);
    CHECK(ev.shareSubexpressions(share) == (share ? 2U : 0U));
    for (int i = 0; i <= 20; ++i) {
      for (const char* job : {"api", "auth"}) {
        const double per_second = std::string(job) == "api" ? 4 : 1.5;
        REQUIRE(store
                    ->append({{"__name__", "requests_total"}, {"job", job}}, i * 15000,
                             per_second * 15 * i)
                    .isOk());
      }
      REQUIRE(ev.evaluate(i * 15000).isOk());
    }
    std::map<std::string, std::vector<std::pair<std::string, double>>> out;
    for (const char* name : {"Warning", "Critical", "TotalBefore", "TotalAfter", "Page"}) {
      for (const auto& a : ev.alerts(name)) {
        std::string job;
        for (const auto& l : a.labels) {
          job += l.name == "job" ? l.value : "";
        }
        out[name].emplace_back(job, a.value);
      }
    }
    return std::make_pair(out, ev.sharedSubexpressionHits());
  };
  const auto [shared, hits] = run(true);
  const auto [unshared, no_hits] = run(false);
  CHECK(shared == unshared);
  CHECK(no_hits == 0);
  // `sum by (job) (rate(...))` is evaluated by Warning and reused by Critical, the first
  // recording rule and Page: no rule writes what it reads. The total is evaluated again after
  // the second recording rule has written the series it reads.
  CHECK(hits == 3);
  REQUIRE(shared.at("Warning").size() == 2);
  REQUIRE(shared.at("Page").size() == 1);
  CHECK(shared.at("Page")[0].first == "api");
  CHECK(shared.at("Page")[0].second == Approx(4));
  // The recorded totals of the cycle before (19 intervals) and of this one (20).
  CHECK(shared.at("TotalBefore")[0].second == Approx((4 + 1.5) * 15 * 19));
  CHECK(shared.at("TotalAfter")[0].second == Approx((4 + 1.5) * 15 * 20));
}

TEST_CASE("Alerts: two series that become one alert are an error, and restored alerts carry on",
          "[rules][alerts]") {
  auto store = makeMemStore();
  auto file = parseRuleFile(R"(groups:
  - name: g
    rules:
      - alert: Same
        expr: up == 0
        labels:
          instance: all
      - alert: Down
        expr: up{instance="a"} == 0
        for: 1m
)",
                            "r.yml");
  REQUIRE(file.errors.empty());
  GroupEvaluator ev(file.groups[0], *store);
  for (int i = 0; i < 3; ++i) {
    for (const char* instance : {"a", "b"}) {
      REQUIRE(store->append({{"__name__", "up"}, {"instance", instance}}, i * 60000, 0).isOk());
    }
    CHECK_THAT(ev.evaluate(i * 60000).message(),
               Catch::Contains("vector contains metrics with the same labelset after applying "
                               "alert labels"));
  }
  REQUIRE(ev.alerts("Down").size() == 1);
  CHECK(ev.alerts("Down")[0].state == AlertState::kFiring);

  // A new evaluator (a reload) takes the alerts over: still one alert, resolved when the
  // series recovers, and no ALERTS series for it from then on.
  GroupEvaluator restored(file.groups[0], *store);
  std::vector<std::pair<std::string, std::vector<Alert>>> state;
  const auto exported = ev.exportAlerts();
  for (std::size_t i = 0; i < exported.size(); ++i) {
    state.emplace_back(file.groups[0].rules[i].name, exported[i]);
  }
  restored.importAlerts(state);
  Engine engine(*store);
  const auto alerts_series = parse("ALERTS{alertname=\"Down\"}");
  for (int i = 3; i < 8; ++i) {
    for (const char* instance : {"a", "b"}) {
      REQUIRE(store->append({{"__name__", "up"}, {"instance", instance}}, i * 60000, 1).isOk());
    }
    REQUIRE(restored.evaluate(i * 60000).isOk());
    const auto down = restored.alerts("Down");
    REQUIRE(down.size() == 1);
    CHECK(down[0].state == AlertState::kInactive);
    CHECK(down[0].resolved_at == 180000);
    auto alerts_now = engine.instant(*alerts_series.expr, i * 60000);
    REQUIRE(alerts_now.isOk());
    CHECK(std::get<Vector>(*alerts_now).empty());
  }
}
