#include "tokenizer/pretokenize.h"

#include <algorithm>
#include <limits>
#include <memory>

#include "tokenizer/unicode.h"
#include "util/error.h"

namespace swapmoe::pretok {

namespace {

constexpr size_t kNoMatch = std::numeric_limits<size_t>::max();

bool ascii_space(uint32_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

// ---------------------------------------------------------------------------------------
// Text views. A regex stage sees one of three views of the code points:
//  * raw:       real code points and real Unicode categories (the custom splitters);
//  * collapsed: ASCII kept, other code points replaced by a category byte (regexes with \p);
//  * wide:      code points, with non-ASCII white space replaced by \v (other regexes).
// In the collapsed and wide views "white space" means ASCII white space of the view value,
// because that is all std::regex's \s matches there.
// ---------------------------------------------------------------------------------------

struct View {
  std::vector<uint32_t> value;  // [n] code value the regex literals and ranges compare with
  std::vector<uint8_t> flags;   // [n] uni::k* bits
};

// llama.cpp's ASCII members of \p{P} and \p{S} in collapsed mode. '~' is in neither.
bool ascii_punct(uint32_t c) {
  return (c >= 0x21 && c <= 0x23) || (c >= 0x25 && c <= 0x2A) || (c >= 0x2C && c <= 0x2F) ||
         (c >= 0x3A && c <= 0x3B) || (c >= 0x3F && c <= 0x40) || (c >= 0x5B && c <= 0x5D) || c == 0x5F ||
         c == 0x7B || c == 0x7D;
}
bool ascii_symbol(uint32_t c) {
  return c == 0x24 || c == 0x2B || (c >= 0x3C && c <= 0x3E) || c == 0x5E || c == 0x60 || c == 0x7C || c == 0x7E;
}

class Text {
 public:
  explicit Text(std::string_view s) : cps(uni::decode_utf8(s)) {}

  const std::vector<uint32_t> cps;

  const std::vector<uint8_t>& raw_flags() const {
    if (raw_.size() != cps.size()) {
      raw_.resize(cps.size());
      for (size_t i = 0; i < cps.size(); ++i) raw_[i] = uni::flags(cps[i]);
    }
    return raw_;
  }

  const View& collapsed() const {
    if (!collapsed_ready_) {
      const auto& rf = raw_flags();
      collapsed_.value.resize(cps.size());
      collapsed_.flags.resize(cps.size());
      for (size_t i = 0; i < cps.size(); ++i) {
        uint32_t c = cps[i];
        uint8_t f = 0;
        if (c >= 0x80) {
          if (rf[i] & uni::kWhitespace) {
            c = 0x0B;
          } else {
            // The category byte itself never equals an ASCII literal; only its class matters.
            f = rf[i] & (uni::kLetter | uni::kNumber | uni::kPunct | uni::kMark | uni::kSymbol);
            c = 0xD0;
          }
        }
        if (c < 0x80) {
          if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) f = uni::kLetter;
          else if (c >= '0' && c <= '9') f = uni::kNumber;
          else if (ascii_punct(c)) f = uni::kPunct;
          else if (ascii_symbol(c)) f = uni::kSymbol;
          else if (ascii_space(c)) f = uni::kWhitespace;
        }
        collapsed_.value[i] = c;
        collapsed_.flags[i] = f;
      }
      collapsed_ready_ = true;
    }
    return collapsed_;
  }

  const View& wide() const {
    if (!wide_ready_) {
      const auto& rf = raw_flags();
      wide_.value.resize(cps.size());
      wide_.flags.resize(cps.size());
      for (size_t i = 0; i < cps.size(); ++i) {
        uint32_t c = cps[i];
        if (c >= 0x80 && (rf[i] & uni::kWhitespace)) c = 0x0B;
        wide_.value[i] = c;
        wide_.flags[i] = ascii_space(c) ? uni::kWhitespace : 0;
      }
      wide_ready_ = true;
    }
    return wide_;
  }

 private:
  mutable std::vector<uint8_t> raw_;
  mutable View collapsed_, wide_;
  mutable bool collapsed_ready_ = false, wide_ready_ = false;
};

// Receives the pieces of one chunk [begin, end) as lengths; empty pieces are dropped.
struct Emitter {
  std::vector<size_t>& out;
  size_t prev;
  void to(size_t pos) {
    if (pos > prev) out.push_back(pos - prev);
    prev = pos;
  }
};

}  // namespace

// One stage of the pre-tokenizer: splits every chunk further.
class Splitter {
 public:
  virtual ~Splitter() = default;
  // in/out: chunk lengths in code points, covering the whole text.
  virtual void apply(const Text& t, const std::vector<size_t>& in, std::vector<size_t>& out) const = 0;
};

namespace {

// ---------------------------------------------------------------------------------------
// Hand-written splitters for the regexes llama.cpp special-cases (GPT-2, Llama-3 and its
// Kimi-K2 marker). They follow the regex alternatives in order; positions outside the
// chunk have no category.
// ---------------------------------------------------------------------------------------

// GPT-2:  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
// Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//          \s*[\r\n]+|\s+(?!\S)|\s+
// Kimi-K2: Han runs first, then like Llama-3 except that letter runs exclude Han and may
//          end in a contraction (llama.cpp's approximation of the tiktoken pattern, which
//          ignores letter case).
class Gpt2Splitter : public Splitter {
 public:
  enum class Mode { kGpt2, kLlama3, kKimi };
  explicit Gpt2Splitter(Mode mode) : mode_(mode) {}

  void apply(const Text& t, const std::vector<size_t>& in, std::vector<size_t>& out) const override {
    const auto& cps = t.cps;
    const auto& rf = t.raw_flags();
    size_t begin = 0;
    for (size_t len : in) {
      const size_t end = begin + len;
      auto fl = [&](size_t p) -> uint8_t { return p < end ? rf[p] : 0; };
      auto cp = [&](size_t p) -> uint32_t { return p < end ? cps[p] : 0xFFFFFFFFu; };
      Emitter em{out, begin};
      size_t pos = begin;
      while (pos < end) {
        const size_t n = mode_ == Mode::kGpt2 ? match_gpt2(fl, cp, pos, end)
                                              : match_llama3(fl, cp, pos, end, mode_ == Mode::kKimi);
        pos += n;
        em.to(pos);
      }
      begin = end;
    }
  }

 private:
  // Length of a contraction ('s 't 'm 'd 're 've 'll) at pos, or 0.
  template <typename CP>
  static size_t contraction(CP cp, size_t pos, size_t end, bool fold) {
    if (cp(pos) != '\'' || pos + 1 >= end) return 0;
    auto low = [&](uint32_t c) { return fold ? uni::to_lower(c) : c; };
    const uint32_t a = low(cp(pos + 1));
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= end) return 0;
    const uint32_t b = low(cp(pos + 2));
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  }

  template <typename FL, typename CP>
  static size_t match_gpt2(FL fl, CP cp, size_t pos, size_t end) {
    if (size_t n = contraction(cp, pos, end, false)) return n;
    const size_t q = cp(pos) == ' ' ? pos + 1 : pos;  // optional leading space
    const uint8_t f = fl(q);
    constexpr uint8_t kLN = uni::kLetter | uni::kNumber;
    if (f & uni::kLetter) return run(fl, q, end, [](uint8_t x) { return (x & uni::kLetter) != 0; }) - pos;
    if (f & uni::kNumber) return run(fl, q, end, [](uint8_t x) { return (x & uni::kNumber) != 0; }) - pos;
    if (q < end && !(f & (kLN | uni::kWhitespace))) {
      return run(fl, q, end, [](uint8_t x) { return x != 0 && !(x & (kLN | uni::kWhitespace)); }) - pos;
    }
    return whitespace(fl, cp, pos, end, false);
  }

  // Han ideographs as llama.cpp's Kimi-K2 splitter defines them.
  static bool is_han(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0x2CEB0 && c <= 0x2EBEF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  }

  template <typename FL, typename CP>
  static size_t match_llama3(FL fl, CP cp, size_t pos, size_t end, bool kimi) {
    const uint32_t c = cp(pos);
    const uint8_t f = fl(pos);
    if (kimi) {
      // [\p{Han}]+
      if (is_han(c)) {
        size_t e = pos;
        while (e < end && is_han(cp(e))) ++e;
        return e - pos;
      }
      // [^\r\n\p{L}\p{N}]?[non-Han letters]+ with an optional contraction at the end.
      auto letter = [&](size_t p) { return (fl(p) & uni::kLetter) && !is_han(cp(p)); };
      const bool lead = c != '\r' && c != '\n' && !(f & (uni::kLetter | uni::kNumber));
      if (letter(pos) || (lead && letter(pos + 1))) {
        size_t e = pos + 1;
        while (letter(e)) ++e;
        return e + contraction(cp, e, end, true) - pos;
      }
    } else {
      if (size_t n = contraction(cp, pos, end, true)) return n;
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (c != '\r' && c != '\n' && !(f & uni::kNumber)) {
        if ((f & uni::kLetter) || (fl(pos + 1) & uni::kLetter)) {
          return run(fl, pos + 1, end, [](uint8_t x) { return (x & uni::kLetter) != 0; }) - pos;
        }
      }
    }
    // \p{N}{1,3}
    if (f & uni::kNumber) {
      size_t e = pos;
      while (e < end && e - pos < 3 && (fl(e) & uni::kNumber)) ++e;
      return e - pos;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    constexpr uint8_t kLNW = uni::kLetter | uni::kNumber | uni::kWhitespace;
    const size_t q = c == ' ' ? pos + 1 : pos;
    if (q < end && !(fl(q) & kLNW)) {
      size_t e = run(fl, q, end, [](uint8_t x) { return x != 0 && !(x & kLNW); });
      while (e < end && (cp(e) == '\r' || cp(e) == '\n')) ++e;
      return e - pos;
    }
    return whitespace(fl, cp, pos, end, true);
  }

  // \s*[\r\n]+ (llama3 only) | \s+(?!\S) | \s+ | any single character.
  template <typename FL, typename CP>
  static size_t whitespace(FL fl, CP cp, size_t pos, size_t end, bool newline_rule) {
    size_t n = 0, last_nl = 0;
    while (fl(pos + n) & uni::kWhitespace) {
      const uint32_t c = cp(pos + n);
      if (c == '\r' || c == '\n') last_nl = n + 1;
      ++n;
    }
    if (newline_rule && last_nl > 0) return last_nl;
    if (n > 1 && pos + n < end) return n - 1;  // leave the last space to the next word
    if (n > 0) return n;
    return 1;
  }

  template <typename FL, typename Pred>
  static size_t run(FL fl, size_t p, size_t end, Pred pred) {
    while (p < end && pred(fl(p))) ++p;
    return p;
  }

  Mode mode_;
};

// ---------------------------------------------------------------------------------------
// Generic regex stage: a small backtracking matcher for the subset of ECMAScript regex
// syntax the pre-tokenizer patterns use: alternation; classes with ranges; \s \S \p{X}
// escapes; quantifiers ? * + {m,n}; (?:..) groups of fixed-length alternatives, plain or
// with '?'; ((?=[X])([Y])), i.e. one character in both X and Y; a negative lookahead of
// one class; and $. Every element but a group matches one character, so greedy
// backtracking over repeat counts (and over group alternatives in order) reproduces
// std::regex's leftmost-first result.
// ---------------------------------------------------------------------------------------

struct CharSet {
  uint8_t flags = 0;                                  // category bits that match
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive code value ranges
  bool negate = false;
  std::shared_ptr<const CharSet> also;  // if set, a character must be in this set too

  bool test(uint32_t v, uint8_t f) const {
    if (also && !also->test(v, f)) return false;
    bool in = (f & flags) != 0;
    for (size_t i = 0; !in && i < ranges.size(); ++i) in = v >= ranges[i].first && v <= ranges[i].second;
    return in != negate;
  }
};

struct Item {
  enum Kind : uint8_t { kSet, kNotAhead, kEnd, kGroup };
  Kind kind = kSet;
  CharSet set;
  size_t min = 1, max = 1;
  size_t slot = 0;                         // index of this item's run cache
  std::vector<std::vector<Item>> group;   // kGroup: fixed-length alternatives of kSet items
};

using Alternative = std::vector<Item>;

struct Pattern {
  std::vector<Alternative> alts;
  bool collapsed = false;
};

class Parser {
 public:
  explicit Parser(const std::string& src) : src_(src), p_(uni::decode_utf8(src)) {}

  Pattern parse() {
    Pattern pat;
    pat.collapsed = src_.find("\\p{") != std::string::npos;
    parse_alts(pat.alts);
    if (i_ != p_.size()) bad("unexpected ')'");
    if (pat.alts.empty()) bad("empty pattern");
    return pat;
  }

 private:
  [[noreturn]] void bad(const char* what) const { fail("pre-tokenizer regex '", src_, "': ", what, " at ", i_); }
  bool at(uint32_t c) const { return i_ < p_.size() && p_[i_] == c; }
  bool starts(std::string_view s) const {
    for (size_t k = 0; k < s.size(); ++k)
      if (i_ + k >= p_.size() || p_[i_ + k] != static_cast<unsigned char>(s[k])) return false;
    return true;
  }

  void parse_alts(std::vector<Alternative>& out) {
    while (true) {
      Alternative alt;
      while (i_ < p_.size() && !at('|') && !at(')')) alt.push_back(parse_item());
      if (alt.empty()) bad("empty alternative");
      out.push_back(std::move(alt));
      if (!at('|')) return;
      ++i_;
    }
  }

  void expect(uint32_t c, const char* what) {
    if (!at(c)) bad(what);
    ++i_;
  }

  Item parse_item() {
    Item it;
    if (starts("(?!")) {
      i_ += 3;
      it.kind = Item::kNotAhead;
      it.set = parse_atom();
      expect(')', "lookahead must hold one class");
      return it;
    }
    if (at('$')) {
      ++i_;
      it.kind = Item::kEnd;
      return it;
    }
    if (starts("(?:")) {
      i_ += 3;
      it.kind = Item::kGroup;
      parse_alts(it.group);
      expect(')', "unclosed group");
      for (const auto& alt : it.group)
        for (const Item& g : alt)
          if (g.kind != Item::kSet || g.min != 1 || g.max != 1) bad("group alternatives must have a fixed length");
      if (at('?')) {
        it.min = 0;
        ++i_;
      }
      if (at('?') || at('+') || at('*') || at('{')) bad("only '?' may follow a group");
      return it;
    }
    if (starts("((?=")) {
      // ((?=[X])([Y])): a character in X and in Y (used to intersect \p{L} with [^a-z]).
      i_ += 4;
      CharSet x = parse_atom();
      expect(')', "bad ((?=X)(Y)) form");
      expect('(', "bad ((?=X)(Y)) form");
      it.set = parse_atom();
      it.set.also = std::make_shared<const CharSet>(std::move(x));
      expect(')', "bad ((?=X)(Y)) form");
      expect(')', "bad ((?=X)(Y)) form");
    } else {
      it.set = parse_atom();
    }
    if (at('?')) { it.min = 0; it.max = 1; ++i_; }
    else if (at('*')) { it.min = 0; it.max = kNoMatch; ++i_; }
    else if (at('+')) { it.min = 1; it.max = kNoMatch; ++i_; }
    else if (at('{')) {
      ++i_;
      it.min = number();
      it.max = it.min;
      if (at(',')) {
        ++i_;
        it.max = at('}') ? kNoMatch : number();
      }
      expect('}', "bad repeat");
    }
    if (at('?') || at('+') || at('*') || at('{')) bad("lazy/possessive or double quantifiers are not supported");
    return it;
  }

  size_t number() {
    size_t v = 0, n = 0;
    while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') { v = v * 10 + (p_[i_++] - '0'); ++n; }
    if (n == 0) bad("number expected");
    return v;
  }

  CharSet parse_atom() {
    CharSet s;
    if (i_ >= p_.size()) bad("atom expected");
    const uint32_t c = p_[i_];
    if (c == '[') {
      ++i_;
      if (at('^')) { s.negate = true; ++i_; }
      while (i_ < p_.size() && !at(']')) class_element(s);
      if (!at(']')) bad("unclosed class");
      ++i_;
      return s;
    }
    if (c == '(' || c == ')' || c == '.' || c == '^' || c == '|') bad("unsupported construct");
    if (c == '\\') {
      ++i_;
      if (at('S')) { ++i_; s.flags = uni::kWhitespace; s.negate = true; return s; }
      escape_into(s);
      return s;
    }
    ++i_;
    s.ranges.push_back({c, c});
    return s;
  }

  void class_element(CharSet& s) {
    uint32_t lo;
    if (at('\\')) {
      ++i_;
      if (at('s') || at('p')) { escape_into(s); return; }
      lo = escaped_char();
    } else {
      lo = p_[i_++];
    }
    uint32_t hi = lo;
    if (at('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
      ++i_;
      if (at('\\')) { ++i_; hi = escaped_char(); }
      else hi = p_[i_++];
      if (hi < lo) bad("reversed range");
    }
    s.ranges.push_back({lo, hi});
  }

  // After a backslash: \s, \p{X} or an escaped character, added to s.
  void escape_into(CharSet& s) {
    if (at('s')) { ++i_; s.flags |= uni::kWhitespace; return; }
    if (at('p')) {
      ++i_;
      if (!at('{')) bad("\\p needs {");
      size_t close = i_;
      while (close < p_.size() && p_[close] != '}') ++close;
      if (close >= p_.size()) bad("unclosed \\p{");
      std::string name;
      for (size_t k = i_ + 1; k < close; ++k) name.push_back(static_cast<char>(p_[k]));
      i_ = close + 1;
      // Letter subcategories are plain \p{L} here, as in llama.cpp's collapsed text.
      if (name == "L" || name == "Lu" || name == "Ll" || name == "Lt" || name == "Lm" || name == "Lo")
        s.flags |= uni::kLetter;
      else if (name == "N") s.flags |= uni::kNumber;
      else if (name == "P") s.flags |= uni::kPunct;
      else if (name == "M") s.flags |= uni::kMark;
      else if (name == "S") s.flags |= uni::kSymbol;
      else bad("unknown \\p category");
      return;
    }
    const uint32_t c = escaped_char();
    s.ranges.push_back({c, c});
  }

  uint32_t escaped_char() {
    if (i_ >= p_.size()) bad("dangling backslash");
    const uint32_t c = p_[i_++];
    switch (c) {
      case 'r': return '\r';
      case 'n': return '\n';
      case 't': return '\t';
      case 'f': return '\f';
      case 'v': return '\v';
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) bad("unsupported escape");
        return c;
    }
  }

  std::string src_;
  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

class RegexSplitter : public Splitter {
 public:
  explicit RegexSplitter(const std::string& pattern) : pat_(Parser(pattern).parse()) {
    for (auto& alt : pat_.alts)
      for (auto& it : alt) it.slot = n_slots_++;
  }

  void apply(const Text& t, const std::vector<size_t>& in, std::vector<size_t>& out) const override {
    const View& v = pat_.collapsed ? t.collapsed() : t.wide();
    std::vector<Run> runs(n_slots_);
    size_t begin = 0;
    for (size_t len : in) {
      const size_t end = begin + len;
      for (Run& r : runs) r = Run{};
      Emitter em{out, begin};
      size_t pos = begin;
      while (pos < end) {
        size_t m = kNoMatch;
        for (const auto& alt : pat_.alts) {
          m = match(alt, 0, pos, end, v, runs);
          if (m != kNoMatch && m > pos) break;
          m = kNoMatch;
        }
        if (m == kNoMatch) {
          ++pos;  // no match starts here; the character joins the gap before the next match
          continue;
        }
        em.to(pos);  // the gap, if any
        em.to(m);    // the match
        pos = m;
      }
      em.to(end);
      begin = end;
    }
  }

 private:
  // Run cache of one item: every character in [from, stop) is in the item's set and
  // stop is not (or is the chunk end). A run starting anywhere in [from, stop] ends at
  // stop, so scanning each start position of a long run again is avoided; without it
  // a pattern like \s+$ is quadratic in the run length.
  struct Run {
    size_t from = kNoMatch, stop = 0;
  };

  // End of a match of items[k..] starting at pos, or kNoMatch. Recursion depth is
  // bounded by the number of items (a handful).
  static size_t match(const Alternative& items, size_t k, size_t pos, size_t end, const View& v,
                      std::vector<Run>& runs) {
    if (k == items.size()) return pos;
    const Item& it = items[k];
    switch (it.kind) {
      case Item::kEnd:
        return pos == end ? match(items, k + 1, pos, end, v, runs) : kNoMatch;
      case Item::kNotAhead:
        if (pos < end && it.set.test(v.value[pos], v.flags[pos])) return kNoMatch;
        return match(items, k + 1, pos, end, v, runs);
      case Item::kGroup:
        // Alternatives in order (each has one possible length), then skipping if optional.
        for (const auto& alt : it.group) {
          size_t e = pos;
          bool ok = true;
          for (const Item& g : alt) {
            if (e >= end || !g.set.test(v.value[e], v.flags[e])) {
              ok = false;
              break;
            }
            ++e;
          }
          if (!ok) continue;
          const size_t r = match(items, k + 1, e, end, v, runs);
          if (r != kNoMatch) return r;
        }
        return it.min == 0 ? match(items, k + 1, pos, end, v, runs) : kNoMatch;
      case Item::kSet:
        break;
    }
    size_t n;
    if (it.max <= 3) {
      n = 0;  // short bounded repeats: scanning is cheaper than caching
      while (n < it.max && pos + n < end && it.set.test(v.value[pos + n], v.flags[pos + n])) ++n;
    } else {
      Run& r = runs[it.slot];
      if (!(r.from != kNoMatch && pos >= r.from && pos <= r.stop)) {
        size_t q = pos;
        while (q < end && it.set.test(v.value[q], v.flags[q])) ++q;
        r = Run{pos, q};
      }
      n = std::min(r.stop - pos, it.max);
    }
    if (n < it.min) return kNoMatch;
    // A run followed by '$' can only succeed by reaching the end.
    if (k + 1 < items.size() && items[k + 1].kind == Item::kEnd) {
      return pos + n == end ? match(items, k + 1, end, end, v, runs) : kNoMatch;
    }
    for (size_t c = n + 1; c-- > it.min;) {
      const size_t r = match(items, k + 1, pos + c, end, v, runs);
      if (r != kNoMatch) return r;
    }
    return kNoMatch;
  }

  Pattern pat_;
  size_t n_slots_ = 0;
};

const char* const kGpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const char* const kLlama3Regex =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

std::unique_ptr<Splitter> make_stage(const std::string& pattern) {
  // llama.cpp routes exactly these two strings to its hand-written splitters.
  if (pattern == kGpt2Regex) return std::make_unique<Gpt2Splitter>(Gpt2Splitter::Mode::kGpt2);
  if (pattern == kLlama3Regex) return std::make_unique<Gpt2Splitter>(Gpt2Splitter::Mode::kLlama3);
  // llama.cpp's marker for its hand-written Kimi-K2 splitter.
  if (pattern == "\\p{Han}+") return std::make_unique<Gpt2Splitter>(Gpt2Splitter::Mode::kKimi);
  return std::make_unique<RegexSplitter>(pattern);
}

struct PreKind {
  const char* kind;
  std::vector<const char*> names;
  std::vector<const char*> patterns;
};

// The regex lists per tokenizer.ggml.pre value, as llama.cpp's llama-vocab.cpp has them.
const std::vector<PreKind>& pre_kinds() {
  static const std::vector<PreKind> kinds = {
      {"default",
       {"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {"llama3",
       {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "dbrx",
        "smaug-bpe", "glm4", "chatglm-bpe"},
       {kLlama3Regex}},
      {"deepseek-llm",
       {"deepseek-llm"},
       {"[\r\n]",
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF"
        "\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5"
        "\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA"
        "\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45"
        "\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-"
        "\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107"
        "\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F"
        "\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
        "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17"
        "\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB"
        "\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"}},
      {"deepseek-coder",
       {"deepseek-coder"},
       {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}},
      {"deepseek-v3",
       {"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"},
       {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
        "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
      {"falcon",
       {"falcon"},
       {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9][0-9][0-9]"}},
      {"starcoder",
       {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {"\\p{N}", kGpt2Regex}},
      {"gpt2",
       {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4"},
       {kGpt2Regex}},
      {"kimi-k2", {"kimi-k2"}, {"\\p{Han}+"}},
      {"bailingmoe",
       {"bailingmoe", "bailingmoe2", "llada-moe"},
       {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
      {"seed-coder",
       {"seed-coder"},
       {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| "
        "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
      {"gpt-4o",
       {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"},
       {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|"
        "'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|"
        "'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
      {"tekken",
       {"tekken"},
       {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])("
        "[^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
      {"qwen2",
       {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"},
       {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
  };
  return kinds;
}

std::vector<std::string> run_stages(std::string_view text, const std::vector<std::unique_ptr<Splitter>>& stages) {
  Text t(text);
  std::vector<size_t> chunks, next;
  if (!t.cps.empty()) chunks.push_back(t.cps.size());
  for (const auto& st : stages) {
    next.clear();
    next.reserve(chunks.size() * 2);
    st->apply(t, chunks, next);
    chunks.swap(next);
  }
  std::vector<std::string> words;
  words.reserve(chunks.size());
  size_t pos = 0;
  for (size_t len : chunks) {
    std::string w;
    for (size_t i = pos; i < pos + len; ++i) uni::append_utf8(w, t.cps[i]);
    words.push_back(std::move(w));
    pos += len;
  }
  return words;
}

}  // namespace

PreTokenizer::PreTokenizer(const std::string& pre) {
  const std::string name = pre.empty() ? "default" : pre;
  for (const auto& k : pre_kinds()) {
    for (const char* n : k.names) {
      if (name == n) {
        kind_ = k.kind;
        for (const char* p : k.patterns) stages_.push_back(make_stage(p));
        return;
      }
    }
  }
  fail("unknown tokenizer.ggml.pre '", pre, "' (supported: qwen2, deepseek-llm, deepseek-v3, deepseek-coder, ",
       "llama-bpe, gpt-2, gpt-4o, tekken, kimi-k2, bailingmoe, seed-coder, default and their llama.cpp aliases)");
}

PreTokenizer::~PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const { return run_stages(text, stages_); }

std::vector<std::string> split_with_patterns(std::string_view text, const std::vector<std::string>& patterns) {
  std::vector<std::unique_ptr<Splitter>> stages;
  for (const auto& p : patterns) stages.push_back(make_stage(p));
  return run_stages(text, stages);
}

}  // namespace swapmoe::pretok
