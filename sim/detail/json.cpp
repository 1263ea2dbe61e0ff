#include "detail/json.hpp"

#include <stdexcept>

namespace stopscan::detail {

const JsonValue* JsonValue::find(const std::string& name) const {
    for (const auto& [key, value] : members)
        if (key == name) return &value;
    return nullptr;
}

namespace {

class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    JsonValue document() {
        JsonValue v = value(0);
        skip();
        if (pos_ != text_.size()) fail("trailing characters after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument("JSON syntax error at byte " + std::to_string(pos_) + ": " +
                                    what);
    }
    void skip() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\t' || text_[pos_] == '\r'))
            ++pos_;
    }
    bool take(char c) {
        skip();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("expected '") + c + "'");
    }

    JsonValue value(int depth) {
        if (depth > 64) fail("nested too deeply");
        skip();
        if (pos_ >= text_.size()) fail("unexpected end");
        JsonValue v;
        const char c = text_[pos_];
        if (c == '{') {
            ++pos_;
            v.kind = JsonValue::object;
            if (take('}')) return v;
            do {
                skip();
                std::string key = string();
                expect(':');
                v.members.push_back({std::move(key), value(depth + 1)});
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++pos_;
            v.kind = JsonValue::array;
            if (take(']')) return v;
            do v.items.push_back(value(depth + 1));
            while (take(','));
            expect(']');
        } else if (c == '"') {
            v.kind = JsonValue::string;
            v.text = string();
        } else if (text_.substr(pos_, 4) == "null") {
            pos_ += 4;
        } else if (text_.substr(pos_, 4) == "true" || text_.substr(pos_, 5) == "false") {
            v.kind = JsonValue::boolean;
            v.text = text_[pos_] == 't' ? "true" : "false";
            pos_ += v.text.size();
        } else {
            const auto start = pos_;
            while (pos_ < text_.size() &&
                   std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos)
                ++pos_;
            if (pos_ == start) fail("unexpected character");
            v.kind = JsonValue::number;
            v.text = std::string(text_.substr(start, pos_ - start));
        }
        return v;
    }

    std::string string() {
        if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string");
        ++pos_;
        std::string out;
        while (true) {
            if (pos_ >= text_.size()) fail("unterminated string");
            const char c = text_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) fail("unterminated escape");
            const char e = text_[pos_++];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    if (pos_ + 4 > text_.size()) fail("short \\u escape");
                    const unsigned code =
                        std::stoul(std::string(text_.substr(pos_, 4)), nullptr, 16);
                    if (code > 0x7f) fail("\\u escape outside ASCII");
                    out += static_cast<char>(code);
                    pos_ += 4;
                    break;
                }
                default:
                    fail("unknown escape");
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

JsonValue parse_json(std::string_view text) {
    return Parser(text).document();
}

}  // namespace stopscan::detail
