// Request validation helpers and the /metrics text.
#include <gtest/gtest.h>

#include "server/api_util.h"
#include "server/server.h"

using namespace swapmoe::server;

namespace {

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const HttpError& e) {
    return e.status();
  }
  return 0;
}

}  // namespace

TEST(ApiUtil, ParseBodyRejectsBadInput) {
  EXPECT_EQ(parse_body(R"({"a": 1})")["a"], 1);
  EXPECT_EQ(status_of([] { parse_body("{"); }), 400);
  EXPECT_EQ(status_of([] { parse_body("[1]"); }), 400);
  EXPECT_EQ(status_of([] { parse_body(""); }), 400);
  EXPECT_EQ(status_of([] { parse_body("\"x\""); }), 400);
  // Deep nesting is refused before the parser sees it; brackets inside strings do not count.
  EXPECT_EQ(status_of([] { parse_body(std::string(100000, '[')); }), 400);
  EXPECT_EQ(status_of([] { parse_body(R"({"a": ")" + std::string(1000, '[') + R"("})"); }), 0);
  EXPECT_EQ(status_of([] { parse_body(R"({"a": "\"[[[[[", "b": 1})", 3); }), 0);
}

TEST(ApiUtil, TypedFields) {
  const json j = json::parse(R"({"s": "x", "n": 0.5, "i": 3, "f": 3.0, "h": 3.5, "b": true, "z": null,
                                 "big": 18446744073709551615, "stop1": "a", "stop2": ["a", "b"], "stop3": [1]})");
  EXPECT_EQ(*opt_string(j, "s"), "x");
  EXPECT_FALSE(opt_string(j, "missing"));
  EXPECT_FALSE(opt_string(j, "z"));
  EXPECT_EQ(status_of([&] { opt_string(j, "n"); }), 400);
  EXPECT_DOUBLE_EQ(*opt_number(j, "n", 0, 1), 0.5);
  EXPECT_EQ(status_of([&] { opt_number(j, "i", 0, 1); }), 400);  // out of range
  EXPECT_EQ(*opt_int(j, "i", 0, 10), 3);
  EXPECT_EQ(*opt_int(j, "f", 0, 10), 3);  // integral float accepted
  EXPECT_EQ(status_of([&] { opt_int(j, "h", 0, 10); }), 400);
  EXPECT_EQ(status_of([&] { opt_int(j, "big", 0, 10); }), 400);
  EXPECT_EQ(status_of([&] { opt_int(j, "s", 0, 10); }), 400);
  EXPECT_TRUE(*opt_bool(j, "b"));
  EXPECT_EQ(status_of([&] { opt_bool(j, "i"); }), 400);
  EXPECT_EQ(opt_stop(j, "stop1"), std::vector<std::string>{"a"});
  EXPECT_EQ(opt_stop(j, "stop2"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(status_of([&] { opt_stop(j, "stop3"); }), 400);
  EXPECT_EQ(status_of([&] { opt_stop(j, "stop2", 1); }), 400);
}

TEST(ApiUtil, UnknownFields) {
  const json j = json::parse(R"({"a": 1, "b": 2})");
  EXPECT_EQ(status_of([&] { check_fields(j, {"a", "b"}, "x"); }), 0);
  EXPECT_EQ(status_of([&] { check_fields(j, {"a"}, "x"); }), 400);
}

TEST(ApiUtil, DumpReplacesInvalidUtf8) {
  EXPECT_EQ(dump(json{{"t", std::string("a\xC3")}}), "{\"t\":\"a\xEF\xBF\xBD\"}");
}

TEST(ApiUtil, SecureEquals) {
  EXPECT_TRUE(secure_equals("Bearer k", "Bearer k"));
  EXPECT_FALSE(secure_equals("Bearer k", "Bearer K"));
  EXPECT_FALSE(secure_equals("Bearer k", "Bearer kk"));
  EXPECT_FALSE(secure_equals("", "x"));
}

TEST(ApiUtil, Rfc3339) {
  const std::string t = rfc3339_now();
  ASSERT_EQ(t.size(), 30u) << t;  // 2026-01-02T03:04:05.123456789Z
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t.back(), 'Z');
}

TEST(Metrics, PrometheusText) {
  EngineMetrics m;
  m.tokens_generated_total = 42;
  m.decode_seconds_total = 5;   // summed over overlapping requests: not the engine's rate
  m.decode_steps_total = 42;
  m.decode_steps_shared = 30;
  m.decode_step_seconds = 2;
  m.queue_depth = 3;
  m.active = 2;
  m.slots = 4;
  m.has_expert_cache = true;
  m.cache_hit_rate = 0.25;
  m.cache_bytes_read = 1000;
  const std::string t = metrics_text(m, 10, 2);
  EXPECT_NE(t.find("\nswapmoe_tokens_generated_total 42\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\nswapmoe_decode_tokens_per_second_avg 21\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_queue_depth 3\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_requests_active 2\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_decode_steps_shared_total 30\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_expert_cache_hit_rate 0.25\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_bytes_read_total 1000\n"), std::string::npos);
  EXPECT_NE(t.find("\nswapmoe_slots 4\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE swapmoe_tokens_generated_total counter\n"), std::string::npos);
}
