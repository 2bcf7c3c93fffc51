#include "util/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace swapmoe::svg {

namespace {

// Margins inside a panel: room for the tick labels, axis labels and title.
constexpr double kLeft = 62, kRight = 16, kTop = 34, kBottom = 50;
constexpr double kTitleHeight = 34;   // the figure title above the panels
constexpr double kLegendLine = 17;    // one legend row below the panels

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

// A tick label: as few digits as the step needs.
std::string tick_label(double v, double step) {
  if (std::fabs(v) < step * 1e-9) v = 0;
  int decimals = 0;
  if (step > 0 && step < 1) decimals = std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  // 2.5 x 10^k needs one more digit than 10^k.
  if (step > 0 && std::fabs(step / std::pow(10.0, std::floor(std::log10(step))) - 2.5) < 1e-9) ++decimals;
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // A usable range: an empty one becomes [0,1], a single value gets room around it.
  void settle() {
    if (!(lo <= hi)) {
      lo = 0;
      hi = 1;
    } else if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
      const double pad = std::max(std::fabs(hi) * 0.05, 1e-6);
      lo -= pad;
      hi += pad;
    }
  }
};

}  // namespace

const char* series_color(size_t i) {
  static const char* const kColors[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                        "#e69f00", "#56b4e9", "#000000", "#f0e442"};
  return kColors[i % (sizeof kColors / sizeof kColors[0])];
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo || target < 1) return t;
  if (hi == lo) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag * 10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) {  // 0.03 / 6 may come out a hair above 0.005
      step = m * mag;
      break;
    }
  // Multiples of the step (not a running sum, which would accumulate rounding).
  const auto k0 = static_cast<long long>(std::ceil(lo / step - 1e-9));
  for (long long k = k0;; ++k) {
    const double v = static_cast<double>(k) * step;
    if (v > hi + step * 1e-9) break;
    t.push_back(v);
  }
  return t;
}

std::string render(const Figure& f) {
  const double pw = f.panel_width, ph = f.panel_height;
  // The legend lists every series name once (the same name in two panels is one entry).
  std::vector<std::string> names;
  for (const Panel& p : f.panels)
    for (const Series& s : p.series)
      if (std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  const double legend_h = kLegendLine * static_cast<double>((names.size() + 2) / 3) + 10;
  const double width = pw * static_cast<double>(std::max<size_t>(1, f.panels.size()));
  const double height = kTitleHeight + ph + legend_h;

  std::string o;
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" + num(height) +
       "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(width / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(f.title) + "</text>\n";

  for (size_t pi = 0; pi < f.panels.size(); ++pi) {
    const Panel& p = f.panels[pi];
    const double ox = pw * static_cast<double>(pi), oy = kTitleHeight;
    const double x0 = ox + kLeft, x1 = ox + pw - kRight, y0 = oy + ph - kBottom, y1 = oy + kTop;
    const bool clip = std::isfinite(p.y_clip);
    auto clipped = [&](double y) { return clip ? std::min(y, p.y_clip) : y; };
    Range xr, yr;
    for (const Series& s : p.series)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(x) && std::isfinite(y)) {
          xr.add(x);
          yr.add(clipped(y));
        }
    for (const HLine& h : p.hlines) yr.add(h.y);
    if (p.y_from_zero) yr.add(0);
    xr.settle();
    yr.settle();
    // Widen to the outer ticks so that lines never touch the frame between ticks.
    const std::vector<double> xt0 = nice_ticks(xr.lo, xr.hi), yt0 = nice_ticks(yr.lo, yr.hi);
    const double xstep = xt0.size() > 1 ? xt0[1] - xt0[0] : (xr.hi - xr.lo);
    const double ystep = yt0.size() > 1 ? yt0[1] - yt0[0] : (yr.hi - yr.lo);
    const double xlo = std::floor(xr.lo / xstep + 1e-9) * xstep, xhi = std::ceil(xr.hi / xstep - 1e-9) * xstep;
    const double ylo = std::floor(yr.lo / ystep + 1e-9) * ystep, yhi = std::ceil(yr.hi / ystep - 1e-9) * ystep;
    auto sx = [&](double x) { return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0); };
    auto sy = [&](double y) { return y0 - (y - ylo) / (yhi - ylo) * (y0 - y1); };

    o += "<g class=\"panel\">\n";
    o += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(oy + 20) + "\" text-anchor=\"middle\" font-size=\"13\">" +
         xml_escape(p.title) + "</text>\n";
    // Grid and ticks.
    for (double v : nice_ticks(xlo, xhi)) {
      const double x = sx(v);
      o += "<line x1=\"" + num(x) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x) + "\" y2=\"" + num(y0) +
           "\" stroke=\"#e4e4e4\"/>\n";
      o += "<line x1=\"" + num(x) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x) + "\" y2=\"" + num(y0 + 5) +
           "\" stroke=\"black\"/>\n";
      o += "<text x=\"" + num(x) + "\" y=\"" + num(y0 + 18) + "\" text-anchor=\"middle\">" + tick_label(v, xstep) +
           "</text>\n";
    }
    for (double v : nice_ticks(ylo, yhi)) {
      const double y = sy(v);
      o += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x1) + "\" y2=\"" + num(y) +
           "\" stroke=\"#e4e4e4\"/>\n";
      o += "<line x1=\"" + num(x0 - 5) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x0) + "\" y2=\"" + num(y) +
           "\" stroke=\"black\"/>\n";
      o += "<text x=\"" + num(x0 - 8) + "\" y=\"" + num(y + 4) + "\" text-anchor=\"end\">" + tick_label(v, ystep) +
           "</text>\n";
    }
    // Axes and their labels.
    o += "<rect x=\"" + num(x0) + "\" y=\"" + num(y1) + "\" width=\"" + num(x1 - x0) + "\" height=\"" +
         num(y0 - y1) + "\" fill=\"none\" stroke=\"black\"/>\n";
    o += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(y0 + 38) + "\" text-anchor=\"middle\">" +
         xml_escape(p.x_label) + "</text>\n";
    o += "<text transform=\"translate(" + num(ox + 16) + "," + num((y0 + y1) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(p.y_label) + "</text>\n";
    // Reference lines, dashed, labelled at their right end.
    // Labels alternate between above-right and below-left, so that two close lines (1.0
    // and 1.03) keep readable labels.
    for (size_t hi = 0; hi < p.hlines.size(); ++hi) {
      const HLine& h = p.hlines[hi];
      if (!std::isfinite(h.y)) continue;
      const double y = sy(h.y);
      const bool right = hi % 2 == 1;
      o += "<line class=\"hline\" x1=\"" + num(x0) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x1) + "\" y2=\"" + num(y) +
           "\" stroke=\"#888888\" stroke-dasharray=\"5,4\"/>\n";
      o += "<text x=\"" + num(right ? x1 - 4 : x0 + 4) + "\" y=\"" + num(right ? y - 4 : y + 13) + "\" text-anchor=\"" +
           (right ? "end" : "start") + "\" fill=\"#666666\" font-size=\"11\">" + xml_escape(h.label) + "</text>\n";
    }
    // Series: a polyline through the points in x order, and a marker on each point.
    for (const Series& s : p.series) {
      std::vector<std::pair<double, double>> pts;
      for (const auto& pt : s.points)
        if (std::isfinite(pt.first) && std::isfinite(pt.second)) pts.push_back(pt);
      if (pts.empty()) continue;
      std::stable_sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      const size_t ci = static_cast<size_t>(std::find(names.begin(), names.end(), s.name) - names.begin());
      const char* c = series_color(ci);
      std::string coords;
      for (const auto& [x, y] : pts) coords += num(sx(x)) + "," + num(sy(clipped(y))) + " ";
      coords.pop_back();
      o += "<polyline class=\"series\" fill=\"none\" stroke=\"" + std::string(c) +
           "\" stroke-width=\"2\" points=\"" + coords + "\"><title>" + xml_escape(s.name) + "</title></polyline>\n";
      for (const auto& [x, y] : pts) {
        if (clip && y > p.y_clip) {
          const double cx = sx(x), cy = sy(p.y_clip);
          o += "<polygon class=\"clipped\" points=\"" + num(cx - 5) + "," + num(cy + 4) + " " + num(cx + 5) + "," +
               num(cy + 4) + " " + num(cx) + "," + num(cy - 5) + "\" fill=\"white\" stroke=\"" + std::string(c) +
               "\" stroke-width=\"1.5\"/>\n";
          char v[32];
          std::snprintf(v, sizeof v, "%.3g", y);
          o += "<text x=\"" + num(cx + 7) + "\" y=\"" + num(cy + 12) + "\" fill=\"" + std::string(c) +
               "\" font-size=\"11\">" + v + "</text>\n";
        } else {
          o += "<circle cx=\"" + num(sx(x)) + "\" cy=\"" + num(sy(y)) + "\" r=\"3\" fill=\"" + std::string(c) + "\"/>\n";
        }
      }
    }
    o += "</g>\n";
  }

  // Legend: three entries per row under the panels.
  o += "<g class=\"legend\">\n";
  for (size_t i = 0; i < names.size(); ++i) {
    const double lx = 20 + static_cast<double>(i % 3) * (width - 40) / 3;
    const double ly = kTitleHeight + ph + 8 + kLegendLine * static_cast<double>(i / 3);
    o += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 24) + "\" y2=\"" + num(ly) +
         "\" stroke=\"" + std::string(series_color(i)) + "\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly + 4) + "\">" + xml_escape(names[i]) + "</text>\n";
  }
  o += "</g>\n</svg>\n";
  return o;
}

}  // namespace swapmoe::svg
