// Value semantics: Python's str()/repr()/==/< and json.dumps, as Jinja templates observe
// them through Hugging Face transformers.

#include "template/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace swapmoe::tmpl {

// The last owner of a list or dict frees it here. Its nested containers that nobody else owns
// are moved onto a work list and freed one at a time, so the stack depth stays constant however
// deep the value is. While the loop runs, a destructor that meets another such container (a
// callable's captured value, say) hands it to the same work list instead of recursing.
void Value::release_iteratively() noexcept {
  static thread_local std::vector<Value>* work = nullptr;
  if (work) {
    work->push_back(std::move(*this));
    return;
  }
  std::vector<Value> list;
  work = &list;
  list.push_back(std::move(*this));
  while (!list.empty()) {
    Value cur = std::move(list.back());
    list.pop_back();
    auto take = [&](Value& child) {
      if ((child.v.index() == 6 || child.v.index() == 7) && child.owns_last_container())
        list.push_back(std::move(child));
    };
    if (cur.v.index() == 6) {
      if (const auto& a = std::get<6>(cur.v); a && a.use_count() == 1)
        for (Value& child : *a) take(child);
    } else if (cur.v.index() == 7) {
      if (const auto& o = std::get<7>(cur.v); o && o.use_count() == 1)
        for (auto& item : o->items) take(item.second);
    }
    cur.v = nullptr;  // frees the container; its nested containers were moved out above
  }
  work = nullptr;
}


double Value::as_double() const {
  if (is_int()) return double(i());
  if (is_float()) return f();
  if (is_bool()) return b() ? 1.0 : 0.0;
  return 0.0;
}

const Value* Object::find(const std::string& key) const {
  for (const auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Object::set(const std::string& key, Value v) {
  for (auto& kv : items)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

const Value* CallArgs::get(const std::string& name, size_t index) const {
  for (const auto& kv : kw)
    if (kv.first == name) return &kv.second;
  if (index < pos.size()) return &pos[index];
  return nullptr;
}

Value make_array(Array items) { return Value(std::make_shared<Array>(std::move(items))); }
Value make_object() { return Value(std::make_shared<Object>()); }

bool truthy(const Value& v) {
  switch (v.v.index()) {
    case 0: return false;
    case 1: return false;
    case 2: return v.b();
    case 3: return v.i() != 0;
    case 4: return v.f() != 0.0;
    case 5: return !v.s().empty();
    case 6: return !v.a()->empty();
    case 7: return v.o()->is_namespace || !v.o()->items.empty();
    default: return true;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  std::string sign = d < 0 ? "-" : "";
  double a = std::fabs(d);
  // Shortest %e representation that reads back to the same double (what Python's repr does).
  char buf[64];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, a);
    if (std::strtod(buf, nullptr) == a) break;
  }
  std::string m(buf);
  size_t e = m.find('e');
  int exp = std::atoi(m.c_str() + e + 1);
  std::string digits;
  for (size_t k = 0; k < e; ++k)
    if (m[k] != '.') digits += m[k];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      std::string ip = digits.substr(0, std::min<size_t>(digits.size(), size_t(exp) + 1));
      while (ip.size() < size_t(exp) + 1) ip += '0';
      std::string fp = digits.size() > size_t(exp) + 1 ? digits.substr(size_t(exp) + 1) : "0";
      out = ip + "." + fp;
    } else {
      out = "0." + std::string(size_t(-exp - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return sign + out;
}

namespace {

// Decodes one UTF-8 code point at s[i]; invalid bytes decode as U+FFFD of length 1.
uint32_t decode_utf8(const std::string& s, size_t i, size_t* len) {
  unsigned char c = (unsigned char)s[i];
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return c < 0x80 ? c : 0xFFFD;
  }
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n; ++k) {
    unsigned char cc = (unsigned char)s[i + k];
    if ((cc & 0xC0) != 0x80) {
      *len = 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *len = size_t(n);
  return cp;
}

std::string json_string(const std::string& s, bool ensure_ascii) {
  std::string out = "\"";
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += char(c);
          }
      }
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp = decode_utf8(s, i, &len);
    if (!ensure_ascii) {
      out.append(s, i, len);
    } else if (cp >= 0x10000) {
      uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      out += buf;
    } else {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    }
    i += len;
  }
  return out + "\"";
}

void dump(const Value& v, const JsonStyle& st, int depth, std::string& out) {
  if (depth > 512) throw std::runtime_error("tojson: value nested too deeply");
  auto newline = [&](int d) {
    if (st.indent >= 0) {
      out += '\n';
      out.append(size_t(st.indent) * size_t(d), ' ');
    }
  };
  std::string item_sep = !st.item_sep.empty() ? st.item_sep : st.indent >= 0 ? "," : ", ";
  switch (v.v.index()) {
    case 0:
    case 1: out += "null"; return;
    case 2: out += v.b() ? "true" : "false"; return;
    case 3: out += std::to_string(v.i()); return;
    case 4: {
      double d = v.f();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += float_repr(d);
      return;
    }
    case 5: out += json_string(v.s(), st.ensure_ascii); return;
    case 6: {
      const Array& a = *v.a();
      if (a.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < a.size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        dump(a[k], st, depth + 1, out);
        check_size(out.size());
      }
      newline(depth);
      out += ']';
      return;
    }
    case 7: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.o()->items) items.push_back(&kv);
      if (st.sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](auto* x, auto* y) { return x->first < y->first; });
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        out += json_string(items[k]->first, st.ensure_ascii);
        out += st.key_sep;
        dump(items[k]->second, st, depth + 1, out);
        check_size(out.size());
      }
      newline(depth);
      out += '}';
      return;
    }
    default: throw std::runtime_error("Object of type function is not JSON serializable");
  }
}

std::string str_repr(const std::string& s) {
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  char buf[8];
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == (unsigned char)q) out += std::string("\\") + char(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + q;
}

}  // namespace

namespace {
std::string to_str_depth(const Value& v, int depth);
std::string repr_depth(const Value& v, int depth) {
  if (v.is_string()) return str_repr(v.s());
  return to_str_depth(v, depth);
}
}  // namespace

std::string repr(const Value& v) { return repr_depth(v, 0); }
std::string to_str(const Value& v) { return to_str_depth(v, 0); }

bool value_reaches(const Value& v, const void* target) {
  if (v.is_array()) {
    if (v.a().get() == target) return true;
    for (const auto& x : *v.a())
      if (value_reaches(x, target)) return true;
  } else if (v.is_object()) {
    if (v.o().get() == target) return true;
    for (const auto& kv : v.o()->items)
      if (value_reaches(kv.second, target)) return true;
  }
  return false;
}

namespace {
std::string to_str_depth(const Value& v, int depth) {
  if (depth > 512) throw std::runtime_error("value nested too deeply to print");
  switch (v.v.index()) {
    case 0: return "";
    case 1: return "None";
    case 2: return v.b() ? "True" : "False";
    case 3: return std::to_string(v.i());
    case 4: return float_repr(v.f());
    case 5: return v.s();
    case 6: {
      std::string out = "[";
      const Array& a = *v.a();
      for (size_t k = 0; k < a.size(); ++k) {
        if (k) out += ", ";
        out += repr_depth(a[k], depth + 1);
        check_size(out.size());
      }
      return out + "]";
    }
    case 7: {
      if (v.o()->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& kv : v.o()->items) {
        if (!first) out += ", ";
        first = false;
        out += str_repr(kv.first) + ": " + repr_depth(kv.second, depth + 1);
        check_size(out.size());
      }
      return out + "}";
    }
    default: return "<function " + v.c()->name + ">";
  }
}
}  // namespace

namespace {
bool equals_depth(const Value& a, const Value& b, int depth);
}  // namespace

// Lists and dicts are shared references, so a template can build a value that contains
// itself (ns.x.append(ns.x)) or a chain deeper than any context: comparison recursion is
// bounded like printing (to_str_depth) and copying (from_json_impl).
bool equals(const Value& a, const Value& b) { return equals_depth(a, b, 0); }

namespace {
bool equals_depth(const Value& a, const Value& b, int depth) {
  if (depth > 512) throw std::runtime_error("values nested too deeply to compare");
  bool an = a.is_number() || a.is_bool(), bn = b.is_number() || b.is_bool();
  if (an && bn) {
    if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
    int64_t x = a.is_bool() ? a.b() : a.i(), y = b.is_bool() ? b.b() : b.i();
    return x == y;
  }
  if (a.v.index() != b.v.index()) return false;
  switch (a.v.index()) {
    case 0:
    case 1: return true;
    case 5: return a.s() == b.s();
    case 6: {
      const Array &x = *a.a(), &y = *b.a();
      if (x.size() != y.size()) return false;
      for (size_t k = 0; k < x.size(); ++k)
        if (!equals_depth(x[k], y[k], depth + 1)) return false;
      return true;
    }
    case 7: {
      const Object &x = *a.o(), &y = *b.o();
      if (&x == &y) return true;
      if (x.is_namespace || y.is_namespace) return false;
      if (x.items.size() != y.items.size()) return false;
      for (const auto& kv : x.items) {
        const Value* o = y.find(kv.first);
        if (!o || !equals_depth(kv.second, *o, depth + 1)) return false;
      }
      return true;
    }
    default: return a.c() == b.c();
  }
}
}  // namespace

namespace {
bool less_than_depth(const Value& a, const Value& b, int depth);
}  // namespace

bool less_than(const Value& a, const Value& b) { return less_than_depth(a, b, 0); }

namespace {
// Python compares lists element by element: the first unequal pair decides. Asking
// less_than both ways at every level (as this once did) costs 2^depth on nested lists.
bool less_than_depth(const Value& a, const Value& b, int depth) {
  if (depth > 512) throw std::runtime_error("values nested too deeply to compare");
  bool an = a.is_number() || a.is_bool(), bn = b.is_number() || b.is_bool();
  if (an && bn) {
    if (a.is_float() || b.is_float()) return a.as_double() < b.as_double();
    int64_t x = a.is_bool() ? a.b() : a.i(), y = b.is_bool() ? b.b() : b.i();
    return x < y;
  }
  if (a.is_string() && b.is_string()) return a.s() < b.s();
  if (a.is_array() && b.is_array()) {
    const Array &x = *a.a(), &y = *b.a();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!equals_depth(x[k], y[k], depth + 1)) return less_than_depth(x[k], y[k], depth + 1);
    return x.size() < y.size();
  }
  throw std::runtime_error(std::string("'<' not supported between instances of '") +
                           type_name(a) + "' and '" + type_name(b) + "'");
}
}  // namespace

const char* type_name(const Value& v) {
  static const char* names[] = {"undefined", "NoneType", "bool", "int", "float",
                                "str", "list", "dict", "function"};
  return names[v.v.index()];
}

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  dump(v, style, 0, out);
  return out;
}

namespace {
template <class J>
Value from_json_impl(const J& j, int depth) {
  if (depth > 512) throw std::runtime_error("context JSON nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value(nullptr);
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= uint64_t(INT64_MAX)) return Value(int64_t(u));
      return Value(double(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      auto a = std::make_shared<Array>();
      a->reserve(j.size());
      for (const auto& e : j) a->push_back(from_json_impl(e, depth + 1));
      return Value(a);
    }
    case nlohmann::json::value_t::object: {
      auto o = std::make_shared<Object>();
      for (auto it = j.begin(); it != j.end(); ++it)
        o->items.emplace_back(it.key(), from_json_impl(it.value(), depth + 1));
      return Value(o);
    }
    default: return Value(nullptr);
  }
}
}  // namespace

Value from_json(const nlohmann::json& j) { return from_json_impl(j, 0); }
Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j, 0); }

std::vector<size_t> utf8_offsets(const std::string& s) {
  std::vector<size_t> offs;
  offs.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offs.push_back(i);
    size_t len;
    decode_utf8(s, i, &len);
    i += len;
  }
  offs.push_back(s.size());
  return offs;
}

uint32_t utf8_decode_at(const std::string& s, size_t i, size_t* len) { return decode_utf8(s, i, len); }

bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    decode_utf8(s, i, &len);
    i += len;
    ++n;
  }
  return n;
}

}  // namespace swapmoe::tmpl
