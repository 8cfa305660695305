//! xl's domain configuration syntax (xl.cfg(5)), as libxlu's lexer and
//! grammar take it (Xen's `tools/libs/util/libxlu_cfg_l.l` and `_y.y`):
//!
//! ```text
//! file       = { stmt } [ assignment ]          (the last one needs no end)
//! stmt       = assignment end | end
//! assignment = IDENT "=" value | IDENT "+=" value
//! end        = NEWLINE | ";"
//! value      = STRING | NUMBER | "[" nl* [ value nl* { "," nl* value nl* } [ "," nl* ] ] "]"
//! IDENT      = [a-z][_0-9a-z]*                  (lower case only)
//! NUMBER     = [0-9][0-9a-fx]*                  (read later with strtol base 0)
//! STRING     = "..." or '...', no raw newline; \" \' \\ \a \b \f \n \r \t \v
//! ```
//!
//! Blanks are spaces and tabs; `#` starts a comment to the end of the line.
//! A key given twice: xl takes the last (`find` walks the settings newest
//! first). `KEY += value` appends to the earlier value (strings concatenate,
//! lists join; a string and a list cannot mix). libxlu's numeric escapes
//! (`\x..`, `\0..`) do not work (`\x` is always refused, octal digits are
//! dropped), so they are refused here with a pointer to the character itself.

use std::fmt;

/// A value as written: numbers stay text, as libxlu keeps them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Num(String),
    List(Vec<Value>),
}

/// One key's effective value, with where it was (last) set.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

/// A parsed file: the settings in the order their keys first appeared, and
/// a line for each key set more than once.
#[derive(Debug, Default)]
pub struct Config {
    pub settings: Vec<Setting>,
    pub repeats: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.msg)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(String),
    Str(String),
    Newline,
    Semi,
    Eq,
    AddEq,
    Open,
    Close,
    Comma,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}'"),
            Tok::Num(s) => format!("number {s}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Newline => "end of line".into(),
            Tok::Semi => "`;'".into(),
            Tok::Eq => "`='".into(),
            Tok::AddEq => "`+='".into(),
            Tok::Open => "`['".into(),
            Tok::Close => "`]'".into(),
            Tok::Comma => "`,'".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    col: usize,
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err<T>(&self, line: usize, col: usize, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { line, col, msg: msg.into() })
    }

    fn word(&mut self, first: char, more: impl Fn(char) -> bool) -> String {
        let mut s = String::from(first);
        while let Some(&c) = self.chars.peek() {
            if !more(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    fn string(&mut self, quote: char, line: usize, col: usize) -> Result<String, ParseError> {
        let mut s = String::new();
        loop {
            let (l, c) = (self.line, self.col);
            match self.bump() {
                None | Some('\n') => return self.err(line, col, format!("unterminated string (no closing {quote})")),
                Some(ch) if ch == quote => return Ok(s),
                Some('\\') => {
                    let e = match self.bump() {
                        Some(e @ ('"' | '\'' | '\\')) => e,
                        Some('a') => '\x07',
                        Some('b') => '\x08',
                        Some('f') => '\x0c',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('v') => '\x0b',
                        Some('x' | '0'..='7') => {
                            return self.err(
                                l,
                                c,
                                "xl mangles numeric escapes (\\x.., \\0..): write the character itself",
                            )
                        }
                        None | Some('\n') => return self.err(line, col, "unterminated string (ends in a backslash)"),
                        Some(e) => return self.err(l, c, format!("invalid character after backslash: {e:?}")),
                    };
                    s.push(e);
                }
                Some(ch) => s.push(ch),
            }
        }
    }

    /// The next token and where it starts.
    fn next(&mut self) -> Result<(Tok, usize, usize), ParseError> {
        loop {
            let (line, col) = (self.line, self.col);
            let Some(c) = self.bump() else { return Ok((Tok::Eof, line, col)) };
            let tok = match c {
                ' ' | '\t' => continue,
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                    continue;
                }
                '\n' => Tok::Newline,
                ';' => Tok::Semi,
                '=' => Tok::Eq,
                '[' => Tok::Open,
                ']' => Tok::Close,
                ',' => Tok::Comma,
                '+' if self.chars.peek() == Some(&'=') => {
                    self.bump();
                    Tok::AddEq
                }
                'a'..='z' => Tok::Ident(self.word(c, |c| matches!(c, 'a'..='z' | '0'..='9' | '_'))),
                '0'..='9' => Tok::Num(self.word(c, |c| matches!(c, '0'..='9' | 'a'..='f' | 'x'))),
                '"' | '\'' => Tok::Str(self.string(c, line, col)?),
                '\r' => return self.err(line, col, "carriage return (DOS line ends?): xl refuses them"),
                'A'..='Z' => return self.err(line, col, format!("{c:?}: xl's keys are lower case")),
                '+' | '-' | '.' | '(' | ')' | ':' => {
                    return self.err(
                        line,
                        col,
                        format!("unexpected {c:?} (this looks like Python, which xl no longer reads)"),
                    )
                }
                c => return self.err(line, col, format!("unexpected character {c:?}")),
            };
            return Ok((tok, line, col));
        }
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    line: usize,
    col: usize,
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(), ParseError> {
        (self.tok, self.line, self.col) = self.lex.next()?;
        Ok(())
    }

    fn unexpected<T>(&self, wanted: &str) -> Result<T, ParseError> {
        Err(ParseError {
            line: self.line,
            col: self.col,
            msg: format!("expected {wanted}, found {}", self.tok.describe()),
        })
    }

    fn skip_newlines(&mut self) -> Result<(), ParseError> {
        while self.tok == Tok::Newline {
            self.advance()?;
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let v = match std::mem::replace(&mut self.tok, Tok::Eof) {
            Tok::Str(s) => Value::Str(s),
            Tok::Num(n) => Value::Num(n),
            Tok::Open => return self.list(self.line, self.col),
            other => {
                self.tok = other;
                return self.unexpected("a value (\"string\", number or [list])");
            }
        };
        self.advance()?;
        Ok(v)
    }

    fn list(&mut self, line: usize, col: usize) -> Result<Value, ParseError> {
        self.advance()?;
        let mut items = Vec::new();
        loop {
            self.skip_newlines()?;
            match self.tok {
                Tok::Close => break,
                Tok::Eof => {
                    return Err(ParseError { line, col, msg: "unterminated list (no closing ])".into() });
                }
                _ => {}
            }
            items.push(self.value()?);
            self.skip_newlines()?;
            match self.tok {
                Tok::Comma => self.advance()?,
                Tok::Close => break,
                Tok::Eof => return Err(ParseError { line, col, msg: "unterminated list (no closing ])".into() }),
                _ => return self.unexpected("`,' or `]' in the list"),
            }
        }
        self.advance()?;
        Ok(Value::List(items))
    }
}

/// Parse an xl config file's text.
pub fn parse(text: &str) -> Result<Config, ParseError> {
    let mut p =
        Parser { lex: Lexer { chars: text.chars().peekable(), line: 1, col: 1 }, tok: Tok::Eof, line: 1, col: 1 };
    p.advance()?;
    let mut cfg = Config::default();
    loop {
        let key = match std::mem::replace(&mut p.tok, Tok::Eof) {
            Tok::Eof => return Ok(cfg),
            Tok::Newline | Tok::Semi => {
                p.advance()?;
                continue;
            }
            Tok::Ident(k) => k,
            other => {
                p.tok = other;
                return p.unexpected("a key (lower-case letters, digits, _)");
            }
        };
        let (line, col) = (p.line, p.col);
        p.advance()?;
        let append = match p.tok {
            Tok::Eq => false,
            Tok::AddEq => true,
            _ => return p.unexpected(&format!("`=' after `{key}'")),
        };
        p.advance()?;
        let value = p.value()?;
        match p.tok {
            Tok::Newline | Tok::Semi | Tok::Eof => {}
            _ => return p.unexpected(&format!("the end of `{key}''s line (a newline or `;')")),
        }
        cfg.set(key, value, append, line, col)?;
    }
}

impl Config {
    fn set(&mut self, key: String, value: Value, append: bool, line: usize, col: usize) -> Result<(), ParseError> {
        let Some(old) = self.settings.iter_mut().find(|s| s.key == key) else {
            self.settings.push(Setting { key, value, line });
            return Ok(());
        };
        let value = match (append, &old.value, value) {
            (false, _, v) => {
                self.repeats
                    .push(format!("line {line}: `{key}' is set again (first on line {}); xl takes this one", old.line));
                v
            }
            (true, Value::List(a), Value::List(b)) => Value::List(a.iter().cloned().chain(b).collect()),
            (true, Value::Str(a) | Value::Num(a), Value::Str(b) | Value::Num(b)) => Value::Str(format!("{a}{b}")),
            (true, _, _) => {
                return Err(ParseError {
                    line,
                    col,
                    msg: format!("`{key} +=' cannot add a list to a string or a string to a list"),
                })
            }
        };
        old.value = value;
        old.line = line;
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.settings.iter().find(|s| s.key == key).map(|s| &s.value)
    }
}

impl Value {
    /// A single value's text (string or number).
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Num(s) => Some(s),
            Value::List(_) => None,
        }
    }

    /// The value as a number, as xl reads one (C's strtol with base 0:
    /// 0x.. hexadecimal, a leading 0 octal). xl reads a quoted number too.
    pub fn number(&self) -> Option<i64> {
        let s = self.atom()?;
        let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => (h, 16),
            None if s.len() > 1 && s.starts_with('0') => (&s[1..], 8),
            None => (s, 10),
        };
        i64::from_str_radix(digits, radix).ok()
    }

    /// The value in xl's syntax.
    pub fn to_xl(&self) -> String {
        match self {
            Value::Num(n) => n.clone(),
            Value::Str(s) => string_literal(s),
            Value::List(items) if items.is_empty() => "[ ]".into(),
            Value::List(items) => {
                format!("[ {} ]", items.iter().map(Value::to_xl).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// A double-quoted xl string for `s`, with the escapes libxlu reads back.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn atoms_quoting_and_comments() {
        let c = parse(
            "# a comment\n\nname = \"web1\" # trailing\nmemory=1024\nkernel = '/boot/vm linuz'\n\
             extra = \"a=\\\"b c\\\" \\\\ \\t\\n\"\nmaxmem = 0x800; vcpus = 2\n",
        )
        .unwrap();
        assert_eq!(c.get("name"), Some(&s("web1")));
        assert_eq!(c.get("memory"), Some(&Value::Num("1024".into())));
        assert_eq!(c.get("kernel"), Some(&s("/boot/vm linuz")));
        assert_eq!(c.get("extra"), Some(&s("a=\"b c\" \\ \t\n")));
        assert_eq!(c.get("maxmem").unwrap().number(), Some(2048));
        assert_eq!(c.get("vcpus").unwrap().number(), Some(2));
        assert_eq!(c.settings.len(), 6);
        assert!(c.repeats.is_empty());
    }

    #[test]
    fn numbers_read_as_strtol_base_0() {
        let n = |t: &str| Value::Num(t.into()).number();
        assert_eq!(n("010"), Some(8));
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("0x1f"), Some(31));
        assert_eq!(n("12a"), None);
        assert_eq!(s("512").number(), Some(512));
    }

    #[test]
    fn lists_span_lines_with_trailing_commas_and_nest() {
        let c = parse("disk = [ 'a',\n  'b', # second\n\n  'c',\n]\nvif=[]\nx = [ [ '1', 2 ], 'y' ]").unwrap();
        assert_eq!(c.get("disk"), Some(&Value::List(vec![s("a"), s("b"), s("c")])));
        assert_eq!(c.get("vif"), Some(&Value::List(vec![])));
        assert_eq!(c.get("x"), Some(&Value::List(vec![Value::List(vec![s("1"), Value::Num("2".into())]), s("y")])));
    }

    #[test]
    fn last_setting_wins_and_is_noted() {
        let c = parse("memory = 512\nname = 'a'\nmemory = 1024\n").unwrap();
        assert_eq!(c.get("memory"), Some(&Value::Num("1024".into())));
        assert_eq!(c.settings[0].key, "memory");
        assert_eq!(c.repeats, vec!["line 3: `memory' is set again (first on line 1); xl takes this one"]);
    }

    #[test]
    fn add_assign_appends() {
        let c = parse("extra = 'a '\nextra += 'b'\ndisk = ['x']\ndisk += ['y']\n").unwrap();
        assert_eq!(c.get("extra"), Some(&s("a b")));
        assert_eq!(c.get("disk"), Some(&Value::List(vec![s("x"), s("y")])));
        assert!(c.repeats.is_empty());
        assert_eq!(err("a = 'x'\na += ['y']\n"), "2:1: `a +=' cannot add a list to a string or a string to a list");
    }

    #[test]
    fn malformed_files_name_line_and_column() {
        assert_eq!(err("name = \"web1\nmemory = 5\n"), "1:8: unterminated string (no closing \")");
        assert_eq!(err("name 'x'\n"), "1:6: expected `=' after `name', found string \"x\"");
        assert_eq!(err("disk = [ 'a',\n 'b'\n"), "1:8: unterminated list (no closing ])");
        assert_eq!(err("disk = [ 'a' 'b' ]\n"), "1:14: expected `,' or `]' in the list, found string \"b\"");
        assert_eq!(err("memory = \n"), "1:10: expected a value (\"string\", number or [list]), found end of line");
        assert_eq!(err("a = 1 b = 2\n"), "1:7: expected the end of `a''s line (a newline or `;'), found `b'");
        assert_eq!(err("Name = 'x'\n"), "1:1: 'N': xl's keys are lower case");
        assert_eq!(err("x = 1\r\n"), "1:6: carriage return (DOS line ends?): xl refuses them");
        assert_eq!(err("a = 'q\\x41'\n"), "1:7: xl mangles numeric escapes (\\x.., \\0..): write the character itself");
        assert_eq!(err("a = 'q\\z'\n"), "1:7: invalid character after backslash: 'z'");
        assert_eq!(err("import os\n"), "1:8: expected `=' after `import', found `os'");
        assert_eq!(err("a = foo()\n"), "1:5: expected a value (\"string\", number or [list]), found `foo'");
        assert_eq!(err("x = 1.5\n"), "1:6: unexpected '.' (this looks like Python, which xl no longer reads)");
        assert_eq!(err("= 3\n"), "1:1: expected a key (lower-case letters, digits, _), found `='");
    }

    #[test]
    fn no_trailing_newline_and_semicolons() {
        let c = parse("a = 1;;b = 'x';\n;c = [ ]").unwrap();
        assert_eq!(c.settings.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn values_print_back_as_xl_reads_them() {
        let v = Value::List(vec![s("a\"b\\c\nd"), Value::Num("0x10".into()), Value::List(vec![])]);
        let text = format!("k = {}\n", v.to_xl());
        assert_eq!(text, "k = [ \"a\\\"b\\\\c\\nd\", 0x10, [ ] ]\n");
        assert_eq!(parse(&text).unwrap().get("k"), Some(&v));
    }
}
