// The SVG writer (well-formed XML, one polyline per series and panel, escaping, ticks) and
// the sweep table (CSV columns, round trip, relative speed, the figure built from rows).

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "eval/eval_table.h"
#include "util/error.h"
#include "util/svg_plot.h"
#include "xml_check.h"

namespace swapmoe {
namespace {

using test::check_xml;

svg::Figure three_series_figure() {
  svg::Figure f;
  f.title = "budget <&> \"quotes\" 'x'";
  svg::Panel a{"left", "budget (MiB)", "ratio", {}, {{1.0, "exact"}, {1.03, "+3%"}}, false};
  a.series = {{"exact", {{20, 1}, {24, 1}, {28, 1}}},
              {"swapmoe τ=1", {{24, 1.7}, {22, 3.8}, {28, 1.0}}},  // unsorted x: drawn in x order
              {"empty", {}}};                                          // no point: no polyline
  svg::Panel b{"right", "budget (MiB)", "tok/s", {}, {}, true};
  b.series = {{"exact", {{20, 480}, {28, 4100}}},
              {"swapmoe τ=1", {{24, std::numeric_limits<double>::quiet_NaN()}, {28, 2000}}}};
  f.panels = {a, b};
  return f;
}

TEST(SvgPlot, WellFormedWithOnePolylinePerSeries) {
  const std::string doc = svg::render(three_series_figure());
  const test::XmlCheck x = check_xml(doc);
  ASSERT_TRUE(x.ok) << x.error;
  EXPECT_EQ(x.elements.front().name, "svg");
  EXPECT_EQ(x.count("g", "panel"), 2u);
  EXPECT_EQ(x.count("polyline", "series"), 4u);  // 2 in each panel ("empty" has none)
  EXPECT_EQ(x.count("line", "hline"), 2u);
  // 3 + 3 markers on the left, 2 + 1 on the right (the NaN point is skipped).
  EXPECT_EQ(x.count("circle"), 9u);
  // The title is escaped, not raw.
  EXPECT_NE(doc.find("budget &lt;&amp;&gt; &quot;quotes&quot; &apos;x&apos;"), std::string::npos);
  // The unsorted series is drawn left to right: its first point has the smallest x.
  for (const auto& e : x.elements)
    if (e.name == "polyline" && doc.find("swapmoe") != std::string::npos && e.attrs.at("points").find(' ') != std::string::npos) {
      const std::string& pts = e.attrs.at("points");
      double prev = -1;
      size_t p = 0;
      while (p < pts.size()) {
        const double xv = std::stod(pts.substr(p));
        EXPECT_GE(xv, prev);
        prev = xv;
        p = pts.find(' ', p);
        if (p == std::string::npos) break;
        ++p;
      }
    }
}

TEST(SvgPlot, ValuesAboveTheClipAreMarkedAtTheEdge) {
  svg::Figure f;
  svg::Panel p;
  p.y_clip = 2.0;
  p.series = {{"a", {{1, 1.0}, {2, 14.0}, {3, 1.5}}}, {"b", {{1, 1.2}, {2, 2.5}}}};
  f.panels = {p};
  const std::string doc = svg::render(f);
  const test::XmlCheck x = check_xml(doc);
  ASSERT_TRUE(x.ok) << x.error;
  EXPECT_EQ(x.count("polyline", "series"), 2u);
  EXPECT_EQ(x.count("polygon", "clipped"), 2u);  // 14.0 and 2.5
  EXPECT_EQ(x.count("circle"), 3u);              // the three points below the clip
  EXPECT_NE(doc.find(">14<"), std::string::npos);
  EXPECT_NE(doc.find(">2.5<"), std::string::npos);
}

TEST(SvgPlot, EmptyFigureIsStillWellFormed) {
  svg::Figure f;
  f.panels = {svg::Panel{}};
  const test::XmlCheck x = check_xml(svg::render(f));
  ASSERT_TRUE(x.ok) << x.error;
  EXPECT_EQ(x.count("polyline"), 0u);
}

TEST(SvgPlot, TheCheckerRejectsBrokenXml) {
  // The checker is what the test above relies on: it must fail on real defects.
  EXPECT_FALSE(check_xml("<svg><g></svg></g>").ok);
  EXPECT_FALSE(check_xml("<svg><text>a < b</text></svg>").ok);
  EXPECT_FALSE(check_xml("<svg><text>a & b</text></svg>").ok);
  EXPECT_FALSE(check_xml("<svg x=1></svg>").ok);
  EXPECT_FALSE(check_xml("<svg></svg><svg></svg>").ok);
  EXPECT_FALSE(check_xml("<svg>").ok);
  EXPECT_TRUE(check_xml("<?xml version=\"1.0\"?>\n<svg a=\"&amp;\"><g/></svg>\n").ok);
}

TEST(SvgPlot, NiceTicks) {
  auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << i;
  };
  near(svg::nice_ticks(0, 10, 5), {0, 2, 4, 6, 8, 10});           // step 10/5 = 2
  near(svg::nice_ticks(20.5, 28.3, 6), {22, 24, 26, 28});         // 7.8/6 = 1.3 -> 2
  near(svg::nice_ticks(1, 1.03, 3), {1, 1.01, 1.02, 1.03});       // 0.01 exactly
  near(svg::nice_ticks(0, 1, 4), {0, 0.25, 0.5, 0.75, 1});        // 0.25 = 2.5 x 10^-1
  near(svg::nice_ticks(-3, 7, 4), {-2.5, 0, 2.5, 5});             // 10/4 = 2.5
  EXPECT_EQ(svg::nice_ticks(3, 3), (std::vector<double>{3}));
  EXPECT_TRUE(svg::nice_ticks(5, 1).empty());
}

cli::SweepRow row(const std::string& label, uint64_t mem, const std::string& policy, double tau, double decode) {
  cli::SweepRow r;
  r.mem_label = label;
  r.mem_bytes = mem;
  r.policy = policy;
  r.exactness = tau;
  r.decode_tok_s = decode;
  r.ppl = 90;
  r.ppl_ratio = 1.0 + (policy == "exact" ? 0 : 0.5);
  r.kl_mean = 1.25e-7;
  r.tokens = 510;
  r.peak_rss_bytes = 123456789;
  return r;
}

TEST(SweepTable, CsvColumnsAndRoundTrip) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<cli::SweepRow> rows = {row("min", 100 << 20, "exact", nan, 50),
                                     row("50%", 200 << 20, "swapmoe", 0.5, 150),
                                     row("resident", 300 << 20, "exact", nan, 200),
                                     row("a,\"b\"", 300 << 20, "swapmoe", 1, 100)};
  cli::finalize_rows(rows);
  EXPECT_EQ(rows[0].decode_rel_resident, 0.25);  // 50 / 200
  EXPECT_EQ(rows[1].decode_rel_resident, 0.75);
  const std::string csv = cli::rows_to_csv(rows);
  const std::string header = csv.substr(0, csv.find('\n'));
  EXPECT_EQ(header,
            "mem_bytes,mem_label,expert_share,n_slots,policy,exactness,tokens,ppl,ppl_ratio,kl_mean,kl_p99,"
            "top1_agreement,eval_tok_s,prefill_tok_s,decode_tok_s,decode_rel_resident,hit_rate,read_bytes_per_token,"
            "stall_ms_per_token,peak_rss_bytes,masked_share,sync_load_share,swap_bytes_per_token");
  // Every data line has as many fields as the header; the exact rows have an empty τ.
  size_t lines = 0, pos = csv.find('\n') + 1;
  while (pos < csv.size()) {
    const size_t e = csv.find('\n', pos);
    const std::vector<std::string> f = cli::split_csv_line(csv.substr(pos, e - pos));
    EXPECT_EQ(f.size(), cli::kSweepColumns.size());
    if (f[4] == "exact") {
      EXPECT_EQ(f[5], "");
    }
    ++lines;
    pos = e + 1;
  }
  EXPECT_EQ(lines, 4u);
  const std::vector<cli::SweepRow> back = cli::rows_from_csv(csv);
  ASSERT_EQ(back.size(), 4u);
  EXPECT_EQ(back[3].mem_label, "a,\"b\"");
  EXPECT_EQ(back[1].policy, "swapmoe");
  EXPECT_EQ(back[1].exactness, 0.5);
  EXPECT_TRUE(std::isnan(back[0].exactness));
  EXPECT_EQ(back[2].mem_bytes, 300u << 20);
  EXPECT_EQ(back[2].peak_rss_bytes, 123456789u);
  EXPECT_DOUBLE_EQ(back[0].kl_mean, 1.25e-7);
  EXPECT_EQ(back[1].decode_rel_resident, 0.75);
  EXPECT_EQ(cli::rows_to_csv(back), csv);
}

TEST(SweepTable, BadCsvIsAnError) {
  EXPECT_THROW(cli::rows_from_csv(""), Error);
  EXPECT_THROW(cli::rows_from_csv("a,b,c\n1,2,3\n"), Error);
  std::string csv = cli::rows_to_csv({row("min", 1, "exact", 0, 1)});
  EXPECT_THROW(cli::rows_from_csv(csv + "1,2\n"), Error);
  csv.replace(csv.find("\n1,") + 1, 1, "x");
  EXPECT_THROW(cli::rows_from_csv(csv), Error);
}

TEST(SweepTable, FigureHasOneLinePerPolicyAndTau) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<cli::SweepRow> rows = {row("min", 20 << 20, "exact", nan, 50),   row("50%", 24 << 20, "exact", nan, 90),
                                     row("100%", 28 << 20, "exact", nan, 180), row("resident", 28 << 20, "exact", nan, 200),
                                     row("50%", 24 << 20, "swapmoe", 1, 150),  row("50%", 24 << 20, "swapmoe", 0.5, 120),
                                     row("100%", 28 << 20, "swapmoe", 1, 190)};
  cli::finalize_rows(rows);
  const svg::Figure f = cli::sweep_figure(rows, "t");
  ASSERT_EQ(f.panels.size(), 3u);  // perplexity ratio, top-1 agreement, decode speed
  ASSERT_EQ(f.panels[0].series.size(), 3u);
  EXPECT_EQ(f.panels[0].series[0].name, "exact");
  EXPECT_EQ(f.panels[0].series[1].name, "swapmoe \xcf\x84=1");
  EXPECT_EQ(f.panels[0].series[2].name, "swapmoe \xcf\x84=0.5");
  // The resident point sits at the 100% point's x: it is the reference line, not a point.
  EXPECT_EQ(f.panels[0].series[0].points.size(), 3u);
  ASSERT_EQ(f.panels[2].hlines.size(), 2u);
  EXPECT_EQ(f.panels[2].hlines[0].y, 200);
  EXPECT_EQ(f.panels[2].hlines[1].y, 140);  // 70% of resident
  const test::XmlCheck x = check_xml(svg::render(f));
  ASSERT_TRUE(x.ok) << x.error;
  EXPECT_EQ(x.count("polyline", "series"), 9u);  // 3 series x 3 panels
}

}  // namespace
}  // namespace swapmoe
