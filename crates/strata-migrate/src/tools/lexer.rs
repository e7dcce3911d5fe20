//! Splits a migration file into statements, the way PostgreSQL's own lexer sees them: `;`
//! ends a statement only outside string literals (`'…'` with `''`, `E'…'` with backslash
//! escapes), quoted identifiers, dollar quotes (`$$…$$`, `$tag$…$tag$`), line comments,
//! nested block comments, parentheses (a rule's `DO (…; …)`), and SQL-standard function
//! bodies (`BEGIN ATOMIC … END`).

/// One statement of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement, from its first token through its `;` (if any); comments before it
    /// are not included.
    pub text: &'a str,
    /// The 1-based line of the file on which it starts.
    pub line: usize,
    /// Whether the keyword `CONCURRENTLY` occurs in it (outside literals and comments).
    pub concurrently: bool,
}

/// A file the lexer cannot split: something is left open at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unterminated {what} starting at line {line}")]
pub struct LexError {
    /// What is left open (a string literal, a dollar quote …).
    pub what: &'static str,
    /// The 1-based line where it starts.
    pub line: usize,
}

/// The statements of `sql`, in order, without the empty ones (only white space or comments).
///
/// # Errors
///
/// [`LexError`] when a string, quoted identifier, dollar quote or block comment is not closed.
pub fn split(sql: &str) -> Result<Vec<Statement<'_>>, LexError> {
    let bytes = sql.as_bytes();
    let line_at = |pos: usize| sql[..pos].matches('\n').count() + 1;
    let open = |what, pos| LexError { what, line: line_at(pos) };
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut atomic_depth = 0usize;
    let mut paren_depth = 0usize;
    let mut concurrently = false;
    let mut previous_word = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if next == Some(b'*') => {
                let mut depth = 0usize;
                let begin = i;
                loop {
                    match (bytes.get(i), bytes.get(i + 1)) {
                        (Some(b'/'), Some(b'*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some(b'*'), Some(b'/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return Err(open("block comment", begin)),
                    }
                }
                continue;
            }
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
        match c {
            b'(' => {
                paren_depth += 1;
                i += 1;
            }
            b')' => {
                paren_depth = paren_depth.saturating_sub(1);
                i += 1;
            }
            b';' if atomic_depth == 0 && paren_depth == 0 => {
                if let Some(s) = start.take().filter(|&s| s < i) {
                    out.push(Statement { text: &sql[s..=i], line: 0, concurrently });
                }
                previous_word.clear();
                concurrently = false;
                i += 1;
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident(bytes[i - 2]));
                i = end_of_quoted(bytes, i, b'\'', escapes).ok_or_else(|| open("string", i))?;
            }
            b'"' => {
                i = end_of_quoted(bytes, i, b'"', false)
                    .ok_or_else(|| open("quoted identifier", i))?;
            }
            b'$' if i == 0 || !is_ident(bytes[i - 1]) => match dollar_tag(&sql[i..]) {
                Some(tag) => {
                    let body = i + tag.len();
                    let close = sql[body..].find(tag).ok_or_else(|| open("dollar quote", i))?;
                    i = body + close + tag.len();
                }
                None => i += 1,
            },
            _ if is_ident_start(c) => {
                let end = (i..bytes.len()).find(|&j| !is_ident(bytes[j])).unwrap_or(bytes.len());
                let word = sql[i..end].to_ascii_lowercase();
                match word.as_str() {
                    "atomic" if previous_word == "begin" => atomic_depth = 1,
                    "case" if atomic_depth > 0 => atomic_depth += 1,
                    "end" if atomic_depth > 0 => atomic_depth -= 1,
                    "concurrently" => concurrently = true,
                    _ => {}
                }
                previous_word = word;
                i = end;
            }
            _ => i += 1,
        }
    }
    if let Some(s) = start {
        out.push(Statement { text: sql[s..].trim_end(), line: 0, concurrently });
    }
    // Line numbers in one pass over the text: counting from the start for each statement was
    // quadratic (a 6 MB file of 100,000 statements took over three minutes).
    let (mut counted, mut line) = (0, 1);
    for statement in &mut out {
        let at = statement.text.as_ptr() as usize - sql.as_ptr() as usize;
        line += bytes[counted..at].iter().filter(|&&b| b == b'\n').count();
        counted = at;
        statement.line = line;
    }
    Ok(out)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The index just past the closing quote of a literal opened at `open`; a doubled quote is
/// an escaped one, and with `backslash` a `\` escapes the next byte.
fn end_of_quoted(bytes: &[u8], open: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash => i += 2,
            c if c == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The dollar-quote tag (`$$` or `$name$`) at the start of `text`, if it opens one.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = text.get(1..)?;
    let len = rest.bytes().take_while(|&c| is_ident(c) && c != b'$').count();
    let tag_ok = len == 0 || !rest.as_bytes()[0].is_ascii_digit();
    (tag_ok && rest.as_bytes().get(len) == Some(&b'$')).then(|| &text[..len + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split(sql).map(|s| s.into_iter().map(|s| s.text).collect()).unwrap_or_default()
    }

    #[test]
    fn splits_plain_statements_and_drops_empty_ones() {
        assert_eq!(texts("select 1; select 2;\n;  ;"), ["select 1;", "select 2;"]);
        assert_eq!(texts("select 1"), ["select 1"]);
        assert_eq!(texts("  \n-- only a comment\n/* and another */\n"), Vec::<&str>::new());
    }

    #[test]
    fn reports_the_line_of_the_first_token() {
        let sql = "-- no-transaction\n-- header\n\ncreate index concurrently a on t (x);\n\n/* c */ create index concurrently b\n  on t (y);\n";
        let stmts = split(sql).unwrap_or_default();
        assert_eq!(stmts.len(), 2);
        assert_eq!((stmts[0].line, stmts[0].text), (4, "create index concurrently a on t (x);"));
        assert_eq!((stmts[1].line, stmts[1].text), (6, "create index concurrently b\n  on t (y);"));
    }

    #[test]
    fn semicolons_in_comments_do_not_split() {
        assert_eq!(
            texts("select 1 -- a; b\n+ 1; select 2;"),
            ["select 1 -- a; b\n+ 1;", "select 2;"]
        );
        assert_eq!(
            texts("select /* a; /* nested; */ still; */ 1; select 2;"),
            ["select /* a; /* nested; */ still; */ 1;", "select 2;"]
        );
    }

    #[test]
    fn semicolons_in_strings_do_not_split() {
        assert_eq!(
            texts("select 'a;b', 'it''s;'; select 2;"),
            ["select 'a;b', 'it''s;';", "select 2;"]
        );
        assert_eq!(texts(r"select E'a\';b'; select 2;"), [r"select E'a\';b';", "select 2;"]);
        assert_eq!(texts(r"select e'\\'; select 2;"), [r"select e'\\';", "select 2;"]);
        // Without E, a backslash is an ordinary character: the literal ends at the next quote.
        assert_eq!(texts(r"select '\'; select 2;"), [r"select '\';", "select 2;"]);
        // `note'...'` is not an E string: the E belongs to an identifier.
        assert_eq!(texts(r"select note'\'; select 2;"), [r"select note'\';", "select 2;"]);
    }

    #[test]
    fn semicolons_in_quoted_identifiers_do_not_split() {
        assert_eq!(
            texts(r#"create table "a;""b" (x int); select 2;"#),
            [r#"create table "a;""b" (x int);"#, "select 2;"]
        );
    }

    #[test]
    fn dollar_quotes_with_and_without_tags() {
        let f = "create function f() returns int language plpgsql as $$ begin return 1; end; $$;";
        assert_eq!(texts(&format!("{f} select 2;")), [f, "select 2;"]);
        let g = "do $body$ begin perform 'x$$;'; raise notice $q$;$q$; end $body$;";
        assert_eq!(texts(&format!("{g}\nselect 2;")), [g, "select 2;"]);
    }

    #[test]
    fn dollar_signs_that_are_not_quotes() {
        assert_eq!(
            texts("prepare p as select $1; select 2;"),
            ["prepare p as select $1;", "select 2;"]
        );
        assert_eq!(texts("select a$b$c from t; select 2;"), ["select a$b$c from t;", "select 2;"]);
    }

    #[test]
    fn comment_and_quote_markers_inside_other_tokens_are_literal() {
        assert_eq!(texts("select '--;', '/*;'; select 2;"), ["select '--;', '/*;';", "select 2;"]);
        assert_eq!(texts("select '$$;'; select 2;"), ["select '$$;';", "select 2;"]);
        assert_eq!(
            texts("select $$ -- ; /* $$; select 2;"),
            ["select $$ -- ; /* $$;", "select 2;"]
        );
        assert_eq!(texts("select \"--\"; select 2;"), ["select \"--\";", "select 2;"]);
        assert_eq!(texts("select U&'d\\0061t'; select 2;"), ["select U&'d\\0061t';", "select 2;"]);
    }

    #[test]
    fn nested_dollar_quotes_with_different_tags() {
        let f = "create function f() returns text language plpgsql as $outer$ begin execute $inner$ select ';' $inner$; return $$;$$; end $outer$;";
        assert_eq!(texts(&format!("{f} select 2;")), [f, "select 2;"]);
        // A tag is case sensitive: $A$ does not close $a$.
        assert_eq!(texts("select $a$ $A$; $a$; select 2;"), ["select $a$ $A$; $a$;", "select 2;"]);
    }

    #[test]
    fn notices_concurrently_outside_literals_only() {
        let stmts = split(
            "create index concurrently a on t (x);\nselect 'concurrently' /* concurrently */;\nREINDEX INDEX CONCURRENTLY a;",
        )
        .unwrap_or_default();
        assert_eq!(stmts.iter().map(|s| s.concurrently).collect::<Vec<_>>(), [true, false, true]);
    }

    #[test]
    fn crlf_files_count_lines_too() {
        let stmts =
            split("-- no-transaction\r\n\r\nselect 1;\r\nselect\r\n 2;\r\n").unwrap_or_default();
        assert_eq!(stmts.iter().map(|s| s.line).collect::<Vec<_>>(), [3, 4]);
    }

    #[test]
    fn semicolons_in_parentheses_do_not_split() {
        let rule = "create rule r as on insert to t do also (insert into a values (1); insert into b values (2));";
        assert_eq!(texts(&format!("{rule}\nselect 2;")), [rule, "select 2;"]);
    }

    #[test]
    fn sql_standard_function_bodies() {
        let f = "create function f(x int) returns int begin atomic select case when x > 0 then 1 else 0 end; select 2; end;";
        assert_eq!(texts(&format!("{f} select 3;")), [f, "select 3;"]);
    }

    #[test]
    fn unterminated_things_are_errors_with_their_line() {
        assert_eq!(split("select 1;\nselect 'oops;"), Err(LexError { what: "string", line: 2 }));
        assert_eq!(split("\n\ndo $x$ begin"), Err(LexError { what: "dollar quote", line: 3 }));
        assert_eq!(split("/* /* */"), Err(LexError { what: "block comment", line: 1 }));
        assert_eq!(split("select \"a"), Err(LexError { what: "quoted identifier", line: 1 }));
    }

    #[test]
    fn non_ascii_text_is_kept_whole() {
        assert_eq!(texts("select 'é;ü'; select \"ñ\";"), ["select 'é;ü';", "select \"ñ\";"]);
    }
}
