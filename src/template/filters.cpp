// Filters ({{ x | f }}), tests ({% if x is t %}), attribute/item access and the Python
// str/list/dict methods templates call (x.strip(), d.items(), ...). Semantics follow
// Jinja2's builtin filters and CPython's methods; transformers' tojson replaces Jinja's
// (json.dumps with ensure_ascii=False and no HTML escaping).

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <map>

#include "template/interp.h"

namespace swapmoe::tmpl {
namespace {

using FilterFn = Value (*)(Interp&, const Value&, const CallArgs&);
using TestFn = bool (*)(Interp&, const Value&, const CallArgs&);

// ---- small helpers ------------------------------------------------------------------

const Value& arg_or(const CallArgs& a, const char* name, size_t idx, const Value& def) {
  const Value* v = a.get(name, idx);
  return v ? *v : def;
}

bool arg_bool(const CallArgs& a, const char* name, size_t idx, bool def) {
  const Value* v = a.get(name, idx);
  return v ? truthy(*v) : def;
}

const std::string& need_str(const Value& v, const char* what) {
  if (!v.is_string()) throw OpError(std::string(what) + " expects a string, got " + type_name(v));
  return v.s();
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Python str.strip/lstrip/rstrip by code point: Unicode whitespace by default, else any
// code point of `chars`.
std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
  bool by_space = !chars || chars->is_none() || chars->is_undefined();
  if (!by_space && !chars->is_string()) throw OpError("strip arg must be None or str");
  std::vector<std::string> set;
  if (!by_space) {
    auto co = utf8_offsets(chars->s());
    for (size_t k = 0; k + 1 < co.size(); ++k) set.push_back(chars->s().substr(co[k], co[k + 1] - co[k]));
  }
  auto offs = utf8_offsets(s);
  auto drop = [&](size_t k) {
    if (by_space) {
      size_t len;
      return py_isspace(utf8_decode_at(s, offs[k], &len));
    }
    for (const auto& c : set)
      if (c.size() == offs[k + 1] - offs[k] && s.compare(offs[k], c.size(), c) == 0) return true;
    return false;
  };
  size_t b = 0, e = offs.size() - 1;
  if (left)
    while (b < e && drop(b)) ++b;
  if (right)
    while (e > b && drop(e - 1)) --e;
  return s.substr(offs[b], offs[e] - offs[b]);
}

std::string ascii_upper(std::string s) {
  for (auto& c : s) c = char(std::toupper((unsigned char)c));
  return s;
}
std::string ascii_lower(std::string s) {
  for (auto& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}
std::string capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty()) out[0] = char(std::toupper((unsigned char)out[0]));
  return out;
}
// Python str.title(): a letter after a non-letter is upper-cased, other letters lowered.
std::string py_title(const std::string& s) {
  std::string out = s;
  bool prev_letter = false;
  for (auto& c : out) {
    bool letter = std::isalpha((unsigned char)c) || ((unsigned char)c >= 0x80);
    if (std::isalpha((unsigned char)c)) c = char(prev_letter ? std::tolower((unsigned char)c) : std::toupper((unsigned char)c));
    prev_letter = letter;
  }
  return out;
}
// Jinja's title filter: words start after whitespace, '-', or an opening bracket.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool start = true;
  for (char c : s) {
    bool sep = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      out += c;
      start = true;
    } else {
      out += char(start ? std::toupper((unsigned char)c) : std::tolower((unsigned char)c));
      start = false;
    }
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` before every code point and at the end.
    int64_t n = 0;
    for (size_t i = 0, len = 0; i < s.size(); i += len) {
      utf8_decode_at(s, i, &len);
      if (count < 0 || n < count) {
        out += to;
        ++n;
        check_size(out.size());
      }
      out.append(s, i, len);
    }
    if (count < 0 || n < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t k = s.find(from, pos);
    if (k == std::string::npos) break;
    out.append(s, pos, k - pos);
    out += to;
    check_size(out.size());
    pos = k + from.size();
    ++n;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

Value split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Array out;
  if (!sep || sep->is_none() || sep->is_undefined()) {
    // Whitespace split: runs of Unicode whitespace separate, leading/trailing ignored.
    auto space_at = [&](size_t i, size_t* len) { return py_isspace(utf8_decode_at(s, i, len)); };
    size_t i = 0, len = 0;
    while (true) {
      while (i < s.size() && space_at(i, &len)) i += len;
      if (i >= s.size()) break;
      if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
        out.push_back(Value(strip_chars(s.substr(i), nullptr, false, true)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !space_at(j, &len)) j += len;
      out.push_back(Value(s.substr(i, j - i)));
      i = j;
    }
    return make_array(std::move(out));
  }
  const std::string& d = need_str(*sep, "split()");
  if (d.empty()) throw OpError("empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || int64_t(out.size()) < maxsplit) {
    size_t k = s.find(d, pos);
    if (k == std::string::npos) break;
    out.push_back(Value(s.substr(pos, k - pos)));
    pos = k + d.size();
  }
  out.push_back(Value(s.substr(pos)));
  return make_array(std::move(out));
}

int64_t as_int(const Value& v, const char* what) {
  if (v.is_int()) return v.i();
  if (v.is_bool()) return v.b();
  if (v.is_float()) return int64_t(v.f());
  throw OpError(std::string(what) + " expects an integer, got " + type_name(v));
}

// Attribute path "a.b.c" as selectattr/map/sort take it.
Value attr_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit((unsigned char)c); });
    cur = digits && cur.is_array() ? get_item(cur, Value(int64_t(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

// Python's %-formatting for the common conversions (%s %r %d %i %f %%).
std::string percent_format(const std::string& fmt, const Array& args) {
  std::string out;
  size_t ai = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) throw OpError("incomplete format");
    char c = fmt[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (ai >= args.size()) throw OpError("not enough arguments for format string");
    const Value& v = args[ai++];
    check_size(out.size());
    if (c == 's') out += to_str(v);
    else if (c == 'r') out += repr(v);
    else if (c == 'd' || c == 'i') out += std::to_string(as_int(v, "%d"));
    else if (c == 'f') {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%f", v.as_double());
      out += buf;
    } else throw OpError(std::string("unsupported format character '") + c + "'");
  }
  if (ai < args.size()) throw OpError("not all arguments converted during string formatting");
  return out;
}

namespace {

// Python str.format with {} / {0} / {name} fields (no format specs beyond plain fields).
std::string brace_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t e = fmt.find('}', i);
      if (e == std::string::npos) throw OpError("unmatched '{' in format string");
      std::string field = fmt.substr(i + 1, e - i - 1);
      if (field.find(':') != std::string::npos || field.find('!') != std::string::npos)
        throw OpError("format specs are not supported in str.format");
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_idx < a.pos.size()) v = &a.pos[auto_idx];
        ++auto_idx;
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return std::isdigit((unsigned char)d); })) {
        size_t k = std::stoul(field);
        if (k < a.pos.size()) v = &a.pos[k];
      } else {
        for (const auto& kv : a.kw)
          if (kv.first == field) v = &kv.second;
      }
      if (!v) throw OpError("missing argument for format field {" + field + "}");
      out += to_str(*v);
      check_size(out.size());
      i = e;
    } else {
      out += c;
    }
  }
  return out;
}

bool sort_less(const Value& x, const Value& y, bool case_sensitive) {
  if (!case_sensitive && x.is_string() && y.is_string()) return ascii_lower(x.s()) < ascii_lower(y.s());
  return less_than(x, y);
}

// ---- filters ------------------------------------------------------------------------

Value f_tojson(Interp&, const Value& v, const CallArgs& a) {
  JsonStyle st;
  const Value* indent = a.get("indent", 0);
  if (indent && indent->is_int()) st.indent = int(std::clamp<int64_t>(indent->i(), 0, 64));
  else if (indent && indent->is_string()) throw OpError("tojson: string indent is not supported");
  st.ensure_ascii = arg_bool(a, "ensure_ascii", 99, false);
  st.sort_keys = arg_bool(a, "sort_keys", 99, false);
  if (const Value* sep = a.get("separators", 99); sep && sep->is_array() && sep->a()->size() == 2) {
    st.item_sep = to_str((*sep->a())[0]);
    st.key_sep = to_str((*sep->a())[1]);
    if (st.item_sep.empty()) st.item_sep = std::string(1, '\0');  // keep "" distinct from default
  }
  std::string out = to_json(v, st);
  if (st.item_sep == std::string(1, '\0')) out.erase(std::remove(out.begin(), out.end(), '\0'), out.end());
  return Value(out);
}

Value f_length(Interp&, const Value& v, const CallArgs&) {
  if (v.is_string()) return Value(int64_t(utf8_length(v.s())));
  if (v.is_array()) return Value(int64_t(v.a()->size()));
  if (v.is_object()) return Value(int64_t(v.o()->items.size()));
  if (v.is_undefined()) return Value(int64_t(0));
  throw OpError(std::string("object of type '") + type_name(v) + "' has no len()");
}

Value f_first(Interp&, const Value& v, const CallArgs&) {
  Array items = iterate(v);
  return items.empty() ? Value() : items.front();
}
Value f_last(Interp&, const Value& v, const CallArgs&) {
  Array items = iterate(v);
  return items.empty() ? Value() : items.back();
}
Value f_trim(Interp&, const Value& v, const CallArgs& a) {
  return Value(strip_chars(to_str(v), a.get("chars", 0), true, true));
}
Value f_upper(Interp&, const Value& v, const CallArgs&) { return Value(ascii_upper(to_str(v))); }
Value f_lower(Interp&, const Value& v, const CallArgs&) { return Value(ascii_lower(to_str(v))); }
Value f_title(Interp&, const Value& v, const CallArgs&) { return Value(jinja_title(to_str(v))); }
Value f_capitalize(Interp&, const Value& v, const CallArgs&) { return Value(capitalize(to_str(v))); }
Value f_string(Interp&, const Value& v, const CallArgs&) { return Value(to_str(v)); }
Value f_safe(Interp&, const Value& v, const CallArgs&) { return v; }
Value f_escape(Interp&, const Value& v, const CallArgs&) { return Value(html_escape(to_str(v))); }

Value f_replace(Interp&, const Value& v, const CallArgs& a) {
  const Value* from = a.get("old", 0);
  const Value* to = a.get("new", 1);
  if (!from || !to) throw OpError("replace needs two arguments");
  const Value* count = a.get("count", 2);
  int64_t n = count && !count->is_none() ? as_int(*count, "replace count") : -1;
  return Value(replace_all(to_str(v), to_str(*from), to_str(*to), n));
}

Value f_join(Interp&, const Value& v, const CallArgs& a) {
  std::string sep = to_str(arg_or(a, "d", 0, Value("")));
  const Value* attr = a.get("attribute", 1);
  std::string out;
  bool first = true;
  for (const auto& x : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += to_str(attr ? attr_path(x, to_str(*attr)) : x);
    check_size(out.size());
  }
  return Value(out);
}

Value f_default(Interp&, const Value& v, const CallArgs& a) {
  Value def = arg_or(a, "default_value", 0, Value(""));
  bool boolean = arg_bool(a, "boolean", 1, false);
  if (v.is_undefined() || (boolean && !truthy(v))) return def;
  return v;
}

Value f_int(Interp&, const Value& v, const CallArgs& a) {
  Value def = arg_or(a, "default", 0, Value(int64_t(0)));
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(int64_t(v.b()));
  if (v.is_float()) {
    if (!std::isfinite(v.f()) || std::fabs(v.f()) > 9.2e18) return def;
    return Value(int64_t(v.f()));
  }
  if (v.is_string()) {
    std::string s = strip_chars(v.s(), nullptr, true, true);
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0' && errno == 0) return Value(int64_t(x));
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value(int64_t(d));
  }
  return def;
}

Value f_float(Interp&, const Value& v, const CallArgs& a) {
  Value def = arg_or(a, "default", 0, Value(0.0));
  if (v.is_number() || v.is_bool()) return Value(v.as_double());
  if (v.is_string()) {
    std::string s = strip_chars(v.s(), nullptr, true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value(d);
  }
  return def;
}

Value f_list(Interp&, const Value& v, const CallArgs&) { return make_array(iterate(v)); }

Value f_items(Interp&, const Value& v, const CallArgs&) {
  Array out;
  if (v.is_object())
    for (const auto& kv : v.o()->items) out.push_back(make_array({Value(kv.first), kv.second}));
  else if (!v.is_undefined()) throw OpError(std::string("items filter expects a mapping, got ") + type_name(v));
  return make_array(std::move(out));
}

Value select_impl(Interp& in, const Value& v, const CallArgs& a, bool by_attr, bool keep) {
  size_t idx = 0;
  std::string attr;
  if (by_attr) {
    if (a.pos.empty()) throw OpError("selectattr/rejectattr need an attribute name");
    attr = to_str(a.pos[0]);
    idx = 1;
  }
  std::string test = a.pos.size() > idx ? to_str(a.pos[idx]) : "";
  CallArgs targs;
  for (size_t k = idx + 1; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
  Array out;
  for (const auto& x : iterate(v)) {
    in.tick();
    Value subject = by_attr ? attr_path(x, attr) : x;
    bool r = test.empty() ? truthy(subject) : apply_test(in, test, subject, targs);
    if (r == keep) out.push_back(x);
  }
  return make_array(std::move(out));
}
Value f_selectattr(Interp& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interp& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, true, false); }
Value f_select(Interp& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interp& in, const Value& v, const CallArgs& a) { return select_impl(in, v, a, false, false); }

Value f_map(Interp& in, const Value& v, const CallArgs& a) {
  Array out;
  if (const Value* attr = a.get("attribute", 99)) {
    const Value* def = a.get("default", 99);
    for (const auto& x : iterate(v)) {
      Value r = attr_path(x, to_str(*attr));
      out.push_back(r.is_undefined() && def ? *def : r);
    }
    return make_array(std::move(out));
  }
  if (a.pos.empty()) throw OpError("map needs a filter name or attribute=");
  std::string filter = to_str(a.pos[0]);
  CallArgs fargs;
  fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
  fargs.kw = a.kw;
  for (const auto& x : iterate(v)) {
    in.tick();
    out.push_back(apply_filter(in, filter, x, fargs));
  }
  return make_array(std::move(out));
}

Value f_unique(Interp& in, const Value& v, const CallArgs& a) {
  bool cs = arg_bool(a, "case_sensitive", 0, false);
  const Value* attr = a.get("attribute", 1);
  Array out, keys;
  for (const auto& x : iterate(v)) {
    Value key = attr ? attr_path(x, to_str(*attr)) : x;
    if (!cs && key.is_string()) key = Value(ascii_lower(key.s()));
    bool seen = false;
    for (const auto& k : keys) {
      in.tick();
      if (equals(k, key)) {
        seen = true;
        break;
      }
    }
    if (!seen) {
      keys.push_back(key);
      out.push_back(x);
    }
  }
  return make_array(std::move(out));
}

Value f_reverse(Interp&, const Value& v, const CallArgs&) {
  if (v.is_string()) {
    auto offs = utf8_offsets(v.s());
    std::string out;
    for (size_t k = offs.size() - 1; k > 0; --k) out.append(v.s(), offs[k - 1], offs[k] - offs[k - 1]);
    return Value(out);
  }
  Array items = iterate(v);
  std::reverse(items.begin(), items.end());
  return make_array(std::move(items));
}

Value f_sort(Interp&, const Value& v, const CallArgs& a) {
  bool rev = arg_bool(a, "reverse", 0, false);
  bool cs = arg_bool(a, "case_sensitive", 1, false);
  const Value* attr = a.get("attribute", 2);
  Array items = iterate(v);
  auto key = [&](const Value& x) { return attr ? attr_path(x, to_str(*attr)) : x; };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return rev ? sort_less(key(y), key(x), cs) : sort_less(key(x), key(y), cs);
  });
  return make_array(std::move(items));
}

Value f_dictsort(Interp&, const Value& v, const CallArgs& a) {
  if (!v.is_object()) throw OpError("dictsort expects a mapping");
  bool cs = arg_bool(a, "case_sensitive", 0, false);
  std::string by = to_str(arg_or(a, "by", 1, Value("key")));
  bool rev = arg_bool(a, "reverse", 2, false);
  Array items;
  for (const auto& kv : v.o()->items) items.push_back(make_array({Value(kv.first), kv.second}));
  size_t k = by == "value" ? 1 : 0;
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const Value &p = (*x.a())[k], &q = (*y.a())[k];
    return rev ? sort_less(q, p, cs) : sort_less(p, q, cs);
  });
  return make_array(std::move(items));
}

Value f_round(Interp&, const Value& v, const CallArgs& a) {
  int64_t prec = as_int(arg_or(a, "precision", 0, Value(int64_t(0))), "round precision");
  std::string method = to_str(arg_or(a, "method", 1, Value("common")));
  double x = v.as_double();
  double m = std::pow(10.0, double(std::clamp<int64_t>(prec, -300, 300)));
  double y = x * m;
  if (method == "ceil") y = std::ceil(y);
  else if (method == "floor") y = std::floor(y);
  else if (method == "common") y = std::nearbyint(y);  // Python's round(): ties to even
  else throw OpError("round method must be 'common', 'ceil' or 'floor'");
  return Value(y / m);
}

Value f_abs(Interp&, const Value& v, const CallArgs&) {
  if (v.is_int()) return v.i() == INT64_MIN ? Value(-double(v.i())) : Value(v.i() < 0 ? -v.i() : v.i());
  if (v.is_float()) return Value(std::fabs(v.f()));
  if (v.is_bool()) return Value(int64_t(v.b()));
  throw OpError(std::string("bad operand type for abs(): '") + type_name(v) + "'");
}

Value f_indent(Interp&, const Value& v, const CallArgs& a) {
  // A copy: arg_or returns a reference to its default argument, a temporary of this statement.
  const Value w = arg_or(a, "width", 0, Value(int64_t(4)));
  std::string pad = w.is_string() ? w.s() : std::string(size_t(std::clamp<int64_t>(as_int(w, "indent width"), 0, 1000)), ' ');
  bool first = arg_bool(a, "first", 1, false);
  bool blank = arg_bool(a, "blank", 2, false);
  std::string s = to_str(v), out;
  size_t pos = 0;
  bool is_first = true;
  while (true) {
    size_t nl = s.find('\n', pos);
    std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    bool indent = is_first ? first : (blank || !strip_chars(line, nullptr, true, true).empty());
    if (indent) out += pad;
    out += line;
    check_size(out.size());
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    is_first = false;
  }
  return Value(out);
}

Value f_wordcount(Interp&, const Value& v, const CallArgs&) {
  std::string s = to_str(v);
  int64_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    bool w = std::isalnum(c) || c == '_' || c >= 0x80;
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value(n);
}

Value f_batch(Interp&, const Value& v, const CallArgs& a) {
  int64_t n = as_int(arg_or(a, "linecount", 0, Value(int64_t(1))), "batch size");
  if (n <= 0) throw OpError("batch size must be positive");
  if (n > int64_t(kMaxString)) throw OpError("batch size too large");
  const Value* fill = a.get("fill_with", 1);
  Array out, cur;
  for (const auto& x : iterate(v)) {
    cur.push_back(x);
    if (int64_t(cur.size()) == n) {
      out.push_back(make_array(std::move(cur)));
      cur.clear();
    }
  }
  if (!cur.empty()) {
    if (fill && !fill->is_none())
      while (int64_t(cur.size()) < n) cur.push_back(*fill);
    out.push_back(make_array(std::move(cur)));
  }
  return make_array(std::move(out));
}

Value f_center(Interp&, const Value& v, const CallArgs& a) {
  int64_t width = std::clamp<int64_t>(as_int(arg_or(a, "width", 0, Value(int64_t(80))), "center width"), 0, 100000);
  std::string s = to_str(v);
  int64_t len = int64_t(utf8_length(s));
  if (len >= width) return Value(s);
  int64_t total = width - len, left = total / 2 + (total & width & 1);
  return Value(std::string(size_t(left), ' ') + s + std::string(size_t(total - left), ' '));
}

Value minmax(const Value& v, const CallArgs& a, bool want_max) {
  bool cs = arg_bool(a, "case_sensitive", 0, false);
  const Value* attr = a.get("attribute", 1);
  Array items = iterate(v);
  if (items.empty()) return Value();
  size_t best = 0;
  for (size_t k = 1; k < items.size(); ++k) {
    Value x = attr ? attr_path(items[k], to_str(*attr)) : items[k];
    Value b = attr ? attr_path(items[best], to_str(*attr)) : items[best];
    if (want_max ? sort_less(b, x, cs) : sort_less(x, b, cs)) best = k;
  }
  return items[best];
}
Value f_max(Interp&, const Value& v, const CallArgs& a) { return minmax(v, a, true); }
Value f_min(Interp&, const Value& v, const CallArgs& a) { return minmax(v, a, false); }

Value f_sum(Interp&, const Value& v, const CallArgs& a) {
  const Value* attr = a.get("attribute", 0);
  Value total = arg_or(a, "start", 1, Value(int64_t(0)));
  for (const auto& x : iterate(v)) {
    Value y = attr ? attr_path(x, to_str(*attr)) : x;
    if (total.is_int() && y.is_int()) {
      int64_t r;
      total = __builtin_add_overflow(total.i(), y.i(), &r) ? Value(double(total.i()) + double(y.i())) : Value(r);
    } else if ((total.is_number() || total.is_bool()) && (y.is_number() || y.is_bool())) {
      total = Value(total.as_double() + y.as_double());
    } else {
      throw OpError("sum: unsupported operand types");
    }
  }
  return total;
}

Value f_attr(Interp&, const Value& v, const CallArgs& a) {
  if (a.pos.empty()) throw OpError("attr needs a name");
  return get_attr(v, to_str(a.pos[0]));
}

Value f_format(Interp&, const Value& v, const CallArgs& a) {
  Array args = a.pos;
  return Value(percent_format(to_str(v), args));
}

Value f_tostring_list(Interp&, const Value& v, const CallArgs&) { return Value(to_str(v)); }

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> m = {
      {"abs", f_abs},           {"attr", f_attr},         {"batch", f_batch},
      {"capitalize", f_capitalize}, {"center", f_center}, {"count", f_length},
      {"d", f_default},         {"default", f_default},   {"dictsort", f_dictsort},
      {"e", f_escape},          {"escape", f_escape},     {"first", f_first},
      {"float", f_float},       {"forceescape", f_escape}, {"format", f_format},
      {"indent", f_indent},     {"int", f_int},           {"items", f_items},
      {"join", f_join},         {"last", f_last},         {"length", f_length},
      {"list", f_list},         {"lower", f_lower},       {"map", f_map},
      {"max", f_max},           {"min", f_min},           {"pprint", f_tostring_list},
      {"reject", f_reject},     {"rejectattr", f_rejectattr}, {"replace", f_replace},
      {"reverse", f_reverse},   {"round", f_round},       {"safe", f_safe},
      {"select", f_select},     {"selectattr", f_selectattr}, {"sort", f_sort},
      {"string", f_string},     {"sum", f_sum},           {"title", f_title},
      {"tojson", f_tojson},     {"trim", f_trim},         {"unique", f_unique},
      {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return m;
}

// ---- tests --------------------------------------------------------------------------

const Value& test_arg(const CallArgs& a) {
  if (a.pos.empty()) throw OpError("test needs an argument");
  return a.pos[0];
}

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> m = {
      {"defined", [](Interp&, const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](Interp&, const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](Interp&, const Value& v, const CallArgs&) { return v.is_none(); }},
      {"string", [](Interp&, const Value& v, const CallArgs&) { return v.is_string(); }},
      {"number", [](Interp&, const Value& v, const CallArgs&) { return v.is_number() || v.is_bool(); }},
      {"integer", [](Interp&, const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](Interp&, const Value& v, const CallArgs&) { return v.is_float(); }},
      {"boolean", [](Interp&, const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](Interp&, const Value& v, const CallArgs&) { return v.is_bool() && v.b(); }},
      {"false", [](Interp&, const Value& v, const CallArgs&) { return v.is_bool() && !v.b(); }},
      {"mapping", [](Interp&, const Value& v, const CallArgs&) { return v.is_object(); }},
      // Jinja's Undefined is iterable (it iterates as empty) and has a length.
      {"iterable", [](Interp&, const Value& v, const CallArgs&) {
         return v.is_array() || v.is_object() || v.is_string() || v.is_undefined();
       }},
      {"sequence", [](Interp&, const Value& v, const CallArgs&) {
         return v.is_array() || v.is_object() || v.is_string() || v.is_undefined();
       }},
      {"callable", [](Interp&, const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"even", [](Interp&, const Value& v, const CallArgs&) { return as_int(v, "even") % 2 == 0; }},
      {"odd", [](Interp&, const Value& v, const CallArgs&) { return as_int(v, "odd") % 2 != 0; }},
      {"divisibleby", [](Interp&, const Value& v, const CallArgs& a) {
         int64_t d = as_int(test_arg(a), "divisibleby");
         if (d == 0) throw OpError("divisibleby 0");
         if (d == -1) return true;
         return as_int(v, "divisibleby") % d == 0;
       }},
      {"equalto", [](Interp&, const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
      {"eq", [](Interp&, const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
      {"==", [](Interp&, const Value& v, const CallArgs& a) { return equals(v, test_arg(a)); }},
      {"ne", [](Interp&, const Value& v, const CallArgs& a) { return !equals(v, test_arg(a)); }},
      {"!=", [](Interp&, const Value& v, const CallArgs& a) { return !equals(v, test_arg(a)); }},
      {"lt", [](Interp&, const Value& v, const CallArgs& a) { return less_than(v, test_arg(a)); }},
      {"lessthan", [](Interp&, const Value& v, const CallArgs& a) { return less_than(v, test_arg(a)); }},
      {"<", [](Interp&, const Value& v, const CallArgs& a) { return less_than(v, test_arg(a)); }},
      {"gt", [](Interp&, const Value& v, const CallArgs& a) { return less_than(test_arg(a), v); }},
      {"greaterthan", [](Interp&, const Value& v, const CallArgs& a) { return less_than(test_arg(a), v); }},
      {">", [](Interp&, const Value& v, const CallArgs& a) { return less_than(test_arg(a), v); }},
      {"le", [](Interp&, const Value& v, const CallArgs& a) { return !less_than(test_arg(a), v); }},
      {"<=", [](Interp&, const Value& v, const CallArgs& a) { return !less_than(test_arg(a), v); }},
      {"ge", [](Interp&, const Value& v, const CallArgs& a) { return !less_than(v, test_arg(a)); }},
      {">=", [](Interp&, const Value& v, const CallArgs& a) { return !less_than(v, test_arg(a)); }},
      {"sameas", [](Interp&, const Value& v, const CallArgs& a) {
         const Value& o = test_arg(a);
         if (v.v.index() != o.v.index()) return false;
         if (v.is_array()) return v.a() == o.a();
         if (v.is_object()) return v.o() == o.o();
         return equals(v, o);
       }},
      {"in", [](Interp&, const Value& v, const CallArgs& a) { return contains(test_arg(a), v); }},
      {"lower", [](Interp&, const Value& v, const CallArgs&) { return v.is_string() && ascii_lower(v.s()) == v.s(); }},
      {"upper", [](Interp&, const Value& v, const CallArgs&) { return v.is_string() && ascii_upper(v.s()) == v.s(); }},
      {"escaped", [](Interp&, const Value&, const CallArgs&) { return false; }},
      {"filter", [](Interp&, const Value& v, const CallArgs&) { return v.is_string() && has_filter(v.s()); }},
      {"test", [](Interp&, const Value& v, const CallArgs&) { return v.is_string() && has_test(v.s()); }},
  };
  return m;
}

// ---- methods ------------------------------------------------------------------------

bool starts_or_ends(const std::string& s, const Value& what, bool start) {
  auto one = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (what.is_array()) {
    for (const auto& x : *what.a())
      if (one(need_str(x, start ? "startswith()" : "endswith()"))) return true;
    return false;
  }
  return one(need_str(what, start ? "startswith()" : "endswith()"));
}

Value str_method(const std::string& s, const std::string& name, const CallArgs& a) {
  auto arg0 = [&]() -> const Value& {
    if (a.pos.empty()) throw OpError(name + "() needs an argument");
    return a.pos[0];
  };
  if (name == "strip") return Value(strip_chars(s, a.get("chars", 0), true, true));
  if (name == "lstrip") return Value(strip_chars(s, a.get("chars", 0), true, false));
  if (name == "rstrip") return Value(strip_chars(s, a.get("chars", 0), false, true));
  if (name == "split") {
    const Value* mx = a.get("maxsplit", 1);
    return split(s, a.get("sep", 0), mx ? as_int(*mx, "maxsplit") : -1);
  }
  if (name == "splitlines") {
    Array out;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t nl = s.find('\n', pos);
      if (nl == std::string::npos) nl = s.size();
      std::string line = s.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      out.push_back(Value(line));
      pos = nl + 1;
    }
    return make_array(std::move(out));
  }
  if (name == "startswith") return Value(starts_or_ends(s, arg0(), true));
  if (name == "endswith") return Value(starts_or_ends(s, arg0(), false));
  if (name == "replace") {
    if (a.pos.size() < 2) throw OpError("replace() needs two arguments");
    int64_t n = a.pos.size() > 2 ? as_int(a.pos[2], "replace count") : -1;
    return Value(replace_all(s, need_str(a.pos[0], "replace()"), need_str(a.pos[1], "replace()"), n));
  }
  if (name == "upper") return Value(ascii_upper(s));
  if (name == "lower") return Value(ascii_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "find" || name == "rfind" || name == "index") {
    const std::string& sub = need_str(arg0(), "find()");
    size_t k = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (k == std::string::npos) {
      if (name == "index") throw OpError("substring not found");
      return Value(int64_t(-1));
    }
    return Value(int64_t(utf8_length(s.substr(0, k))));
  }
  if (name == "count") {
    const std::string& sub = need_str(arg0(), "count()");
    if (sub.empty()) return Value(int64_t(utf8_length(s) + 1));
    int64_t n = 0;
    for (size_t k = s.find(sub); k != std::string::npos; k = s.find(sub, k + sub.size())) ++n;
    return Value(n);
  }
  if (name == "format") return Value(brace_format(s, a));
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const auto& x : iterate(arg0())) {
      if (!first) out += s;
      first = false;
      out += need_str(x, "join()");
      check_size(out.size());
    }
    return Value(out);
  }
  auto all = [&](auto pred) {
    return Value(!s.empty() && std::all_of(s.begin(), s.end(), [&](char c) { return pred((unsigned char)c); }));
  };
  if (name == "isdigit") return all([](unsigned char c) { return std::isdigit(c) != 0; });
  if (name == "isalpha") return all([](unsigned char c) { return std::isalpha(c) != 0; });
  if (name == "isalnum") return all([](unsigned char c) { return std::isalnum(c) != 0; });
  if (name == "isspace") return all([](unsigned char c) { return is_space(char(c)); });
  if (name == "islower") return Value(ascii_lower(s) == s && ascii_upper(s) != s);
  if (name == "isupper") return Value(ascii_upper(s) == s && ascii_lower(s) != s);
  throw OpError("str has no method '" + name + "'");
}

bool is_str_method(const std::string& n) {
  static const char* names[] = {"strip", "lstrip", "rstrip", "split", "splitlines", "startswith",
                                "endswith", "replace", "upper", "lower", "title", "capitalize",
                                "find", "rfind", "index", "count", "format", "join", "isdigit",
                                "isalpha", "isalnum", "isspace", "islower", "isupper"};
  return std::find_if(std::begin(names), std::end(names), [&](const char* x) { return n == x; }) != std::end(names);
}

Value list_method(const ArrayP& arr, const std::string& name, const CallArgs& a) {
  if (name == "append") {
    if (a.pos.size() != 1) throw OpError("append() takes one argument");
    if (arr->size() >= kMaxString) throw OpError("list too large");
    if (value_reaches(a.pos[0], arr.get())) throw OpError("cannot append a list to itself");
    arr->push_back(a.pos[0]);
    return Value(nullptr);
  }
  if (name == "extend") {
    if (a.pos.size() != 1) throw OpError("extend() takes one argument");
    Array more = iterate(a.pos[0]);
    for (const auto& x : more)
      if (value_reaches(x, arr.get())) throw OpError("cannot put a list inside itself");
    if (arr->size() + more.size() >= kMaxString) throw OpError("list too large");
    arr->insert(arr->end(), more.begin(), more.end());
    return Value(nullptr);
  }
  if (name == "pop") {
    if (arr->empty()) throw OpError("pop from empty list");
    int64_t i = a.pos.empty() ? -1 : as_int(a.pos[0], "pop index");
    if (i < 0) i += int64_t(arr->size());
    if (i < 0 || i >= int64_t(arr->size())) throw OpError("pop index out of range");
    Value v = (*arr)[size_t(i)];
    arr->erase(arr->begin() + i);
    return v;
  }
  if (name == "index" || name == "count") {
    if (a.pos.empty()) throw OpError(name + "() needs an argument");
    int64_t n = 0;
    for (size_t k = 0; k < arr->size(); ++k)
      if (equals((*arr)[k], a.pos[0])) {
        if (name == "index") return Value(int64_t(k));
        ++n;
      }
    if (name == "index") throw OpError("value is not in list");
    return Value(n);
  }
  throw OpError("list has no method '" + name + "'");
}

bool is_list_method(const std::string& n) {
  return n == "append" || n == "extend" || n == "pop" || n == "index" || n == "count";
}

Value dict_method(const ObjectP& o, const std::string& name, const CallArgs& a) {
  if (name == "items") {
    Array out;
    for (const auto& kv : o->items) out.push_back(make_array({Value(kv.first), kv.second}));
    return make_array(std::move(out));
  }
  if (name == "keys" || name == "values") {
    Array out;
    for (const auto& kv : o->items) out.push_back(name == "keys" ? Value(kv.first) : kv.second);
    return make_array(std::move(out));
  }
  if (name == "get") {
    if (a.pos.empty()) throw OpError("get() needs a key");
    const Value* v = a.pos[0].is_string() ? o->find(a.pos[0].s()) : nullptr;
    if (v) return *v;
    return a.pos.size() > 1 ? a.pos[1] : Value(nullptr);
  }
  if (name == "copy") {
    auto c = std::make_shared<Object>(*o);
    c->is_namespace = false;
    return Value(c);
  }
  throw OpError("dict has no method '" + name + "'");
}

bool is_dict_method(const std::string& n) {
  return n == "items" || n == "keys" || n == "values" || n == "get" || n == "copy";
}

Value bind(const Value& self, const std::string& name) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->fn = [self, name](const CallArgs& a, Interp&) -> Value {
    if (self.is_string()) return str_method(self.s(), name, a);
    if (self.is_array()) return list_method(self.a(), name, a);
    return dict_method(self.o(), name, a);
  };
  return Value(c);
}

// Python slice index normalisation (PySlice_AdjustIndices).
void slice_indices(int64_t len, const Value& start, const Value& stop, int64_t step, int64_t* b, int64_t* e) {
  auto norm = [&](const Value& v, int64_t def, bool is_start) {
    if (v.is_none() || v.is_undefined()) return def;
    int64_t x = as_int(v, "slice index");
    if (x < 0) {
      x = x < -len ? -1 : x + len;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= len) {
      x = step < 0 ? len - 1 : len;
    }
    (void)is_start;
    return x;
  };
  *b = norm(start, step < 0 ? len - 1 : 0, true);
  *e = norm(stop, step < 0 ? -1 : len, false);
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

Value apply_filter(Interp& in, const std::string& name, const Value& v, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) throw OpError("unknown filter '" + name + "'");
  return it->second(in, v, args);
}

bool apply_test(Interp& in, const std::string& name, const Value& v, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) throw OpError("unknown test '" + name + "'");
  return it->second(in, v, args);
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_object()) {
    if (!obj.o()->is_namespace && is_dict_method(name)) return bind(obj, name);
    const Value* v = obj.o()->find(name);
    return v ? *v : Value();
  }
  if (obj.is_string() && is_str_method(name)) return bind(obj, name);
  if (obj.is_array() && is_list_method(name)) return bind(obj, name);
  return Value();
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_object()) {
    if (key.is_string()) {
      const Value* v = obj.o()->find(key.s());
      return v ? *v : get_attr(obj, key.s());
    }
    return Value();
  }
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.is_int() ? key.i() : key.b();
    if (obj.is_array()) {
      int64_t n = int64_t(obj.a()->size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value();
      return (*obj.a())[size_t(i)];
    }
    auto offs = utf8_offsets(obj.s());
    int64_t n = int64_t(offs.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return Value(obj.s().substr(offs[size_t(i)], offs[size_t(i) + 1] - offs[size_t(i)]));
  }
  if (key.is_string()) return get_attr(obj, key.s());
  return Value();
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& stepv) {
  int64_t step = stepv.is_none() || stepv.is_undefined() ? 1 : as_int(stepv, "slice step");
  if (step == 0) throw OpError("slice step cannot be zero");
  if (obj.is_undefined()) return Value();
  std::vector<size_t> offs;
  int64_t len;
  if (obj.is_string()) {
    offs = utf8_offsets(obj.s());
    len = int64_t(offs.size()) - 1;
  } else if (obj.is_array()) {
    len = int64_t(obj.a()->size());
  } else {
    throw OpError(std::string("'") + type_name(obj) + "' object is not subscriptable");
  }
  int64_t b, e;
  slice_indices(len, start, stop, step, &b, &e);
  std::string s;
  Array out;
  for (int64_t k = b; step > 0 ? k < e : k > e;) {
    if (obj.is_string()) s.append(obj.s(), offs[size_t(k)], offs[size_t(k) + 1] - offs[size_t(k)]);
    else out.push_back((*obj.a())[size_t(k)]);
    if (__builtin_add_overflow(k, step, &k)) break;  // a huge step: past the end anyway
  }
  if (obj.is_string()) return Value(s);
  return make_array(std::move(out));
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) throw OpError("'in <string>' requires string as left operand");
    return container.s().find(item.s()) != std::string::npos;
  }
  if (container.is_array()) {
    for (const auto& x : *container.a())
      if (equals(x, item)) return true;
    return false;
  }
  if (container.is_object()) return item.is_string() && container.o()->find(item.s()) != nullptr;
  if (container.is_undefined()) return false;
  throw OpError(std::string("argument of type '") + type_name(container) + "' is not iterable");
}

Array iterate(const Value& v) {
  if (v.is_array()) return *v.a();
  if (v.is_object()) {
    Array out;
    for (const auto& kv : v.o()->items) out.push_back(Value(kv.first));
    return out;
  }
  if (v.is_string()) {
    auto offs = utf8_offsets(v.s());
    Array out;
    for (size_t k = 0; k + 1 < offs.size(); ++k) out.push_back(Value(v.s().substr(offs[k], offs[k + 1] - offs[k])));
    return out;
  }
  if (v.is_undefined()) return {};
  throw OpError(std::string("'") + type_name(v) + "' object is not iterable");
}

}  // namespace swapmoe::tmpl
