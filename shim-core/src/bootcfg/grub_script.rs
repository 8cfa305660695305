//! GRUB 2's script language, as far as generated `grub.cfg` files use it:
//! words with '…' / "…" quoting, backslash escapes and `$var` / `${var}`
//! references; `;` and newlines; comments; `if`/`elif`/`else`/`fi`,
//! `menuentry`/`submenu`/`function` bodies in braces; `for`/`while`/`until`
//! loops are parsed and never run. Words keep their variable references so
//! that the interpreter (`grub2.rs`) expands them when the command runs.

use alloc::string::String;
use alloc::vec::Vec;

use super::BootCfgError;

const FILE: &str = "grub.cfg";
/// Nesting of if/menuentry/submenu/... blocks: real files use 3.
const MAX_DEPTH: usize = 32;

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text; `quoted` when it came from quotes or an escape (so it
    /// is never a keyword and an empty one still makes an argument).
    Lit { text: String, quoted: bool },
    /// `$name`; inside double quotes the value is not split into fields.
    Var { name: String, quoted: bool },
}

/// A word as written: its parts are joined after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(pub Vec<Part>);

impl Word {
    /// The word's text when it is one unquoted literal (how keywords,
    /// braces and assignments are recognised).
    pub fn plain(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Part::Lit { text, quoted: false }] => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    /// `;` or a newline.
    Sep,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Cmd {
        words: Vec<Word>,
    },
    If {
        /// (condition, body) for `if` and each `elif`.
        arms: Vec<(Vec<Node>, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    /// `menuentry` (`submenu` false) or `submenu` with its arguments (title
    /// and options) and body.
    Entry {
        line: usize,
        submenu: bool,
        args: Vec<Word>,
        body: Vec<Node>,
    },
    /// A `function` definition, a loop, or a `{ ... }` group: never run.
    Skipped,
}

/// Parses a whole file.
pub fn parse(src: &str) -> Result<Vec<Node>, BootCfgError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    let nodes = p.list(&[], 0, 1)?;
    match p.peek() {
        None => Ok(nodes),
        Some((line, _)) => Err(syntax(line, "unexpected '}' or keyword")),
    }
}

fn syntax(line: usize, msg: &str) -> BootCfgError {
    BootCfgError::Syntax { file: FILE, line, msg: msg.into() }
}

/// Splits the source into words and separators, each with its line.
fn lex(src: &str) -> Result<Vec<(usize, Tok)>, BootCfgError> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let mut line = 1usize;
    // The word being built, and the line it started on.
    let mut word: Option<(usize, Word)> = None;

    fn push_lit(w: &mut Word, c: char, quoted: bool) {
        if let Some(Part::Lit { text, quoted: q }) = w.0.last_mut() {
            if *q == quoted {
                text.push(c);
                return;
            }
        }
        w.0.push(Part::Lit { text: c.into(), quoted });
    }
    fn finish(out: &mut Vec<(usize, Tok)>, word: &mut Option<(usize, Word)>) {
        if let Some((l, w)) = word.take() {
            out.push((l, Tok::Word(w)));
        }
    }

    while let Some(c) = chars.next() {
        match c {
            '\n' | ';' => {
                finish(&mut out, &mut word);
                out.push((line, Tok::Sep));
                if c == '\n' {
                    line += 1;
                }
            }
            ' ' | '\t' | '\r' => finish(&mut out, &mut word),
            '#' if word.is_none() => {
                // A comment runs to the end of the line (the newline stays).
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '\\' => match chars.next() {
                Some('\n') => line += 1,
                Some(n) => push_lit(&mut word.get_or_insert((line, Word::default())).1, n, true),
                None => {}
            },
            q @ ('\'' | '"') => {
                // '...' is literal; "..." expands variables and takes the
                // escapes \" \\ \$ and \newline.
                let double = q == '"';
                let start = line;
                let w = &mut word.get_or_insert((line, Word::default())).1;
                // An empty '' or "" still makes an argument.
                w.0.push(Part::Lit { text: String::new(), quoted: true });
                loop {
                    match chars.next() {
                        Some(c) if c == q => break,
                        Some('\\') if double => match chars.next() {
                            Some('\n') => line += 1,
                            Some(n @ ('"' | '\\' | '$')) => push_lit(w, n, true),
                            Some(n) => {
                                push_lit(w, '\\', true);
                                push_lit(w, n, true);
                            }
                            None => return Err(syntax(start, "unterminated quote")),
                        },
                        Some('$') if double => dollar(&mut chars, w, true, start)?,
                        Some(n) => {
                            if n == '\n' {
                                line += 1;
                            }
                            push_lit(w, n, true);
                        }
                        None => return Err(syntax(start, "unterminated quote")),
                    }
                }
            }
            '$' => {
                let w = &mut word.get_or_insert((line, Word::default())).1;
                dollar(&mut chars, w, false, line)?;
            }
            c => push_lit(&mut word.get_or_insert((line, Word::default())).1, c, false),
        }
    }
    finish(&mut out, &mut word);
    Ok(out)
}

/// After a `$`: `${name}`, `$name`, `$1`, `$?`, `$#`; a lone `$` is literal.
fn dollar(
    chars: &mut core::iter::Peekable<core::str::Chars<'_>>,
    w: &mut Word,
    quoted: bool,
    line: usize,
) -> Result<(), BootCfgError> {
    let mut name = String::new();
    match chars.peek().copied() {
        Some('{') => {
            chars.next();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some('\n') | None => return Err(syntax(line, "unterminated ${")),
                    Some(c) => name.push(c),
                }
            }
        }
        Some(c) if c == '?' || c == '#' || c == '@' || c == '*' => {
            chars.next();
            name.push(c);
        }
        Some(c) if c.is_ascii_digit() => {
            while let Some(&d) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                name.push(d);
                chars.next();
            }
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            while let Some(&d) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_') {
                    break;
                }
                name.push(d);
                chars.next();
            }
        }
        _ => {
            w.0.push(Part::Lit { text: "$".into(), quoted });
            return Ok(());
        }
    }
    w.0.push(Part::Var { name, quoted });
    Ok(())
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

/// Words that end a command list (so they are not run as commands).
const ENDERS: &[&str] = &["then", "elif", "else", "fi", "do", "done", "}"];

impl Parser {
    fn peek(&self) -> Option<(usize, Option<&str>)> {
        self.toks.get(self.pos).map(|(l, t)| match t {
            Tok::Word(w) => (*l, w.plain()),
            Tok::Sep => (*l, None),
        })
    }

    fn skip_seps(&mut self) {
        while let Some((_, Tok::Sep)) = self.toks.get(self.pos) {
            self.pos += 1;
        }
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).or_else(|| self.toks.last()).map_or(1, |(l, _)| *l)
    }

    /// Commands up to (not including) one of `stop` at a command's start, or
    /// the end of the input when `stop` is empty. `opened` is the line of the
    /// block's start, for the error when nothing closes it.
    fn list(&mut self, stop: &[&str], depth: usize, opened: usize) -> Result<Vec<Node>, BootCfgError> {
        if depth > MAX_DEPTH {
            return Err(BootCfgError::TooComplex { file: FILE, what: "blocks nested too deep" });
        }
        let mut nodes = Vec::new();
        loop {
            self.skip_seps();
            let Some((line, kw)) = self.peek() else {
                if let Some(last) = stop.last() {
                    return Err(syntax(opened, &alloc::format!("no '{last}' closes this block")));
                }
                return Ok(nodes);
            };
            if let Some(k) = kw {
                if stop.contains(&k) {
                    return Ok(nodes);
                }
                if ENDERS.contains(&k) {
                    return Err(syntax(line, &alloc::format!("unexpected '{k}'")));
                }
            }
            nodes.push(self.command(depth)?);
        }
    }

    /// Consumes the keyword `k` (the caller's `list` stopped at it).
    fn expect(&mut self, k: &str) -> Result<(), BootCfgError> {
        match self.peek() {
            Some((_, Some(w))) if w == k => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(syntax(self.line(), &alloc::format!("missing '{k}'"))),
        }
    }

    /// Words up to a separator, a `}` or (with `to_brace`) a `{`.
    fn words(&mut self, to_brace: bool) -> Vec<Word> {
        let mut words = Vec::new();
        while let Some((_, Tok::Word(w))) = self.toks.get(self.pos) {
            if w.plain() == Some("}") || (to_brace && w.plain() == Some("{")) {
                break;
            }
            words.push(w.clone());
            self.pos += 1;
        }
        words
    }

    fn command(&mut self, depth: usize) -> Result<Node, BootCfgError> {
        let (line, kw) = self.peek().unwrap_or((1, None));
        let kw = kw.map(String::from);
        match kw.as_deref() {
            Some("if") => {
                self.pos += 1;
                let mut arms = Vec::new();
                let mut otherwise = Vec::new();
                loop {
                    let cond = self.list(&["then"], depth + 1, line)?;
                    self.expect("then")?;
                    let body = self.list(&["elif", "else", "fi"], depth + 1, line)?;
                    arms.push((cond, body));
                    match self.peek() {
                        Some((_, Some("elif"))) => self.pos += 1,
                        Some((_, Some("else"))) => {
                            self.pos += 1;
                            otherwise = self.list(&["fi"], depth + 1, line)?;
                            self.expect("fi")?;
                            break;
                        }
                        _ => {
                            self.expect("fi")?;
                            break;
                        }
                    }
                }
                Ok(Node::If { arms, otherwise })
            }
            Some(k @ ("menuentry" | "submenu")) => {
                let submenu = k == "submenu";
                self.pos += 1;
                let args = self.words(true);
                if self.peek().map(|(_, w)| w) != Some(Some("{")) {
                    return Err(syntax(line, &alloc::format!("{k} without '{{'")));
                }
                let body = self.block(depth)?;
                Ok(Node::Entry { line, submenu, args, body })
            }
            Some("function") => {
                self.pos += 1;
                self.words(true);
                if self.peek().map(|(_, w)| w) != Some(Some("{")) {
                    return Err(syntax(line, "function without '{'"));
                }
                self.block(depth)?;
                Ok(Node::Skipped)
            }
            Some("{") => {
                self.block(depth)?;
                Ok(Node::Skipped)
            }
            Some(k @ ("for" | "while" | "until")) => {
                self.pos += 1;
                if k == "for" {
                    self.words(false);
                }
                self.list(&["do"], depth + 1, line)?;
                self.expect("do")?;
                self.list(&["done"], depth + 1, line)?;
                self.expect("done")?;
                Ok(Node::Skipped)
            }
            _ => Ok(Node::Cmd { words: self.words(false) }),
        }
    }

    /// `{ commands }` starting at the `{`.
    fn block(&mut self, depth: usize) -> Result<Vec<Node>, BootCfgError> {
        let line = self.line();
        self.expect("{")?;
        let body = self.list(&["}"], depth + 1, line)?;
        self.expect("}")?;
        Ok(body)
    }
}
