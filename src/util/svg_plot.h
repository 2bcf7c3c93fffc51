#pragma once
// A small self-contained SVG line-plot writer (no dependencies): a figure of side-by-side
// panels, each with axes, "nice" ticks, grid lines, one polyline (plus point markers) per
// series, optional dashed horizontal reference lines, and a legend. Used by `swapmoe sweep`
// to draw quality and speed against the memory budget.
//
// Output structure (tests parse it back): one <svg> root; per panel one <g class="panel">
// containing exactly one <polyline class="series"> per series with at least one point.
// All text is XML-escaped.

#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace swapmoe::svg {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite points are skipped
};

struct HLine {
  double y = 0;
  std::string label;
};

struct Panel {
  std::string title;
  std::string x_label, y_label;
  std::vector<Series> series;
  std::vector<HLine> hlines;
  bool y_from_zero = false;  // include 0 in the y range
  // Values above y_clip (when finite) are drawn at the top edge as an open triangle with
  // their value written beside, so that one outlier does not flatten the interesting range.
  double y_clip = std::numeric_limits<double>::quiet_NaN();
};

struct Figure {
  std::string title;
  std::vector<Panel> panels;
  int panel_width = 460, panel_height = 340;
};

// The SVG document.
std::string render(const Figure& f);

// Up to ~`target` round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// "&" -> "&amp;" and so on for < > " '.
std::string xml_escape(const std::string& s);

// The colour of series i (a fixed, colour-blind-friendly cycle).
const char* series_color(size_t i);

}  // namespace swapmoe::svg
