#pragma once
// A minimal XML well-formedness checker for the tests (the SVG writer has no dependency,
// so neither does its test): one root element, balanced and properly nested tags,
// attributes as name="value", no raw '<' in text or values, '&' only as one of the five
// predefined entities or a numeric reference. It records each element's name and
// attributes so tests can count polylines.

#include <map>
#include <string>
#include <vector>

namespace swapmoe::test {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attrs;
};

struct XmlCheck {
  bool ok = false;
  std::string error;
  std::vector<XmlElement> elements;  // in document order
  size_t count(const std::string& name, const std::string& cls = "") const {
    size_t n = 0;
    for (const auto& e : elements)
      if (e.name == name && (cls.empty() || (e.attrs.count("class") && e.attrs.at("class") == cls))) ++n;
    return n;
  }
};

inline bool valid_entities(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') return false;
    if (s[i] != '&') continue;
    const size_t semi = s.find(';', i);
    if (semi == std::string::npos) return false;
    const std::string ent = s.substr(i + 1, semi - i - 1);
    if (ent != "amp" && ent != "lt" && ent != "gt" && ent != "quot" && ent != "apos" && (ent.empty() || ent[0] != '#'))
      return false;
    i = semi;
  }
  return true;
}

inline XmlCheck check_xml(const std::string& s) {
  XmlCheck r;
  std::vector<std::string> stack;
  int roots = 0;
  size_t i = 0;
  auto err = [&](const std::string& m) {
    r.error = m + " at byte " + std::to_string(i);
    return r;
  };
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.'; };
  while (i < s.size()) {
    if (s[i] != '<') {
      const size_t next = s.find('<', i);
      const std::string text = s.substr(i, next == std::string::npos ? std::string::npos : next - i);
      if (!valid_entities(text)) return err("bad text");
      if (stack.empty() && text.find_first_not_of(" \t\r\n") != std::string::npos) return err("text outside the root");
      if (next == std::string::npos) break;
      i = next;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      const size_t e = s.find("?>", i);
      if (e == std::string::npos || roots > 0 || !stack.empty()) return err("bad declaration");
      i = e + 2;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t e = s.find("-->", i);
      if (e == std::string::npos) return err("unterminated comment");
      i = e + 3;
      continue;
    }
    const bool closing = s.compare(i, 2, "</") == 0;
    size_t p = i + (closing ? 2 : 1);
    std::string name;
    while (p < s.size() && is_name(s[p])) name += s[p++];
    if (name.empty()) return err("empty tag name");
    if (closing) {
      while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
      if (p >= s.size() || s[p] != '>') return err("bad closing tag");
      if (stack.empty() || stack.back() != name) return err("mismatched </" + name + ">");
      stack.pop_back();
      i = p + 1;
      continue;
    }
    XmlElement el{name, {}};
    bool self_closing = false;
    for (;;) {
      while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
      if (p >= s.size()) return err("unterminated tag");
      if (s[p] == '>') {
        ++p;
        break;
      }
      if (s.compare(p, 2, "/>") == 0) {
        self_closing = true;
        p += 2;
        break;
      }
      std::string an;
      while (p < s.size() && is_name(s[p])) an += s[p++];
      if (an.empty() || p + 1 >= s.size() || s[p] != '=' || s[p + 1] != '"') return err("bad attribute in <" + name + ">");
      const size_t close = s.find('"', p + 2);
      if (close == std::string::npos) return err("unterminated attribute value");
      const std::string value = s.substr(p + 2, close - p - 2);
      if (!valid_entities(value)) return err("bad attribute value");
      if (el.attrs.count(an)) return err("duplicate attribute " + an);
      el.attrs[an] = value;
      p = close + 1;
      if (p < s.size() && !std::isspace(static_cast<unsigned char>(s[p])) && s[p] != '>' && s[p] != '/')
        return err("no space between attributes");
    }
    if (stack.empty()) {
      if (++roots > 1) return err("second root element");
    }
    r.elements.push_back(el);
    if (!self_closing) stack.push_back(name);
    i = p;
  }
  if (!stack.empty()) return err("unclosed <" + stack.back() + ">");
  if (roots != 1) return err("no root element");
  r.ok = true;
  return r;
}

}  // namespace swapmoe::test
