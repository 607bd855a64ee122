//! A small expression language for constraints and launch geometry.
//!
//! Constraints (`block * items <= 8192`, `tile % rows == 0`) and bench expressions (`ceil_div(n, block *
//! items)`, `min(bm, 128)`) share one grammar, parsed once into a tree whose names are bound to slots, so
//! evaluating it over thousands of configs is a walk over a few nodes with no lookups by name.
//!
//! Grammar, lowest precedence first: `||` (or `or`), `&&` (or `and`), comparisons `== != < <= > >=`,
//! `<< >>`, `+ -`, `* / %`, unary `- !` (or `not`), then integers, `true`/`false`, quoted strings, names,
//! calls `ceil_div(a, b)`, `min(a, b, …)`, `max(a, b, …)`, and parentheses. Arithmetic is on 64-bit
//! integers with C semantics for `/` and `%` (as the `-D` values are seen by the kernel); booleans count as
//! 0/1; strings only compare for (in)equality. Overflow and division by zero are evaluation errors, which a
//! constraint treats as "not satisfied".
//!
//! An expression is data: it can only read the slots it was bound to and compute a value.

use std::fmt;

use crate::value::Value;

/// A parsed expression with its names bound to slots.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Lit(Value),
    Slot(usize),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    CeilDiv,
    Min,
    Max,
}

/// Why an expression could not be parsed or bound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("syntax error in `{expr}` at column {column}: {message}")]
    Syntax { expr: String, column: usize, message: String },
    #[error("unknown name `{name}` in `{expr}` (known names: {known})")]
    UnknownName { name: String, expr: String, known: String },
}

/// Why an expression could not be evaluated for given slot values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("integer overflow")]
    Overflow,
    #[error("type error: {0}")]
    Type(String),
}

impl Expr {
    /// Parses `source`, binding each name through `resolve` (name → slot index); `known` is only used to
    /// list the valid names when one is unknown.
    pub fn parse(source: &str, resolve: impl Fn(&str) -> Option<usize>, known: &[&str]) -> Result<Expr, ExprError> {
        let tokens = lex(source)?;
        let mut p = Parser { source, tokens, pos: 0, resolve: &resolve, known };
        let root = p.or()?;
        if let Some(t) = p.tokens.get(p.pos) {
            return Err(p.syntax(t.column, format!("unexpected `{}`", t.text)));
        }
        Ok(Expr { source: source.to_owned(), root })
    }

    /// Parses against an ordered list of names: slot `i` is `names[i]`.
    pub fn parse_with_names(source: &str, names: &[&str]) -> Result<Expr, ExprError> {
        Expr::parse(source, |n| names.iter().position(|k| *k == n), names)
    }

    /// Parses against `names` (slot `i` is `names[i]`), with each of `constants` (a problem size) bound to
    /// its value: `m % bm == 0` over the parameter `bm` and the size `m = 4096` reads slot 0 only.
    pub fn parse_with_constants(source: &str, names: &[&str], constants: &[(String, i64)]) -> Result<Expr, ExprError> {
        let known: Vec<&str> = names.iter().copied().chain(constants.iter().map(|(n, _)| n.as_str())).collect();
        let mut expr = Expr::parse_with_names(source, &known)?;
        fn fold(n: &mut Node, first: usize, constants: &[(String, i64)]) {
            match n {
                Node::Slot(s) if *s >= first => *n = Node::Lit(Value::Int(constants[*s - first].1)),
                Node::Lit(_) | Node::Slot(_) => {}
                Node::Unary(_, a) => fold(a, first, constants),
                Node::Binary(_, a, b) => {
                    fold(a, first, constants);
                    fold(b, first, constants)
                }
                Node::Call(_, args) => args.iter_mut().for_each(|a| fold(a, first, constants)),
            }
        }
        fold(&mut expr.root, names.len(), constants);
        Ok(expr)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The slots this expression reads, each once, in first-use order.
    pub fn slots(&self) -> Vec<usize> {
        fn walk(n: &Node, out: &mut Vec<usize>) {
            match n {
                Node::Lit(_) => {}
                Node::Slot(s) => {
                    if !out.contains(s) {
                        out.push(*s)
                    }
                }
                Node::Unary(_, a) => walk(a, out),
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out)
                }
                Node::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Evaluates with `slots[i]` as the value of slot `i`.
    pub fn eval(&self, slots: &[Value]) -> Result<Value, EvalError> {
        eval(&self.root, slots)
    }

    /// Evaluates to an integer (booleans count as 0/1).
    pub fn eval_i64(&self, slots: &[Value]) -> Result<i64, EvalError> {
        let v = self.eval(slots)?;
        v.as_i64().ok_or_else(|| EvalError::Type(format!("`{}` is a string, not a number", self.source)))
    }

    /// Evaluates as a condition; an evaluation error is an `Err` the caller may read as "false".
    pub fn eval_bool(&self, slots: &[Value]) -> Result<bool, EvalError> {
        let v = self.eval(slots)?;
        v.as_bool().ok_or_else(|| EvalError::Type(format!("`{}` is a string, not a condition", self.source)))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn int(v: &Value) -> Result<i64, EvalError> {
    v.as_i64().ok_or_else(|| EvalError::Type(format!("{v} is not a number")))
}

fn eval(n: &Node, slots: &[Value]) -> Result<Value, EvalError> {
    Ok(match n {
        Node::Lit(v) => v.clone(),
        Node::Slot(i) => slots.get(*i).cloned().ok_or_else(|| EvalError::Type(format!("no value for slot {i}")))?,
        Node::Unary(UnOp::Neg, a) => Value::Int(int(&eval(a, slots)?)?.checked_neg().ok_or(EvalError::Overflow)?),
        Node::Unary(UnOp::Not, a) => {
            let v = eval(a, slots)?;
            Value::Bool(!v.as_bool().ok_or_else(|| EvalError::Type(format!("cannot negate {v}")))?)
        }
        Node::Binary(BinOp::Or, a, b) => {
            let l = eval(a, slots)?;
            if l.as_bool().ok_or_else(|| EvalError::Type(format!("{l} is not a condition")))? {
                Value::Bool(true)
            } else {
                let r = eval(b, slots)?;
                Value::Bool(r.as_bool().ok_or_else(|| EvalError::Type(format!("{r} is not a condition")))?)
            }
        }
        Node::Binary(BinOp::And, a, b) => {
            let l = eval(a, slots)?;
            if !l.as_bool().ok_or_else(|| EvalError::Type(format!("{l} is not a condition")))? {
                Value::Bool(false)
            } else {
                let r = eval(b, slots)?;
                Value::Bool(r.as_bool().ok_or_else(|| EvalError::Type(format!("{r} is not a condition")))?)
            }
        }
        Node::Binary(op, a, b) => {
            let l = eval(a, slots)?;
            let r = eval(b, slots)?;
            match op {
                BinOp::Eq | BinOp::Ne => {
                    let eq = match (&l, &r) {
                        (Value::Str(x), Value::Str(y)) => x == y,
                        (Value::Str(_), _) | (_, Value::Str(_)) => {
                            return Err(EvalError::Type(format!("cannot compare {l} with {r}")))
                        }
                        _ => int(&l)? == int(&r)?,
                    };
                    Value::Bool(if *op == BinOp::Eq { eq } else { !eq })
                }
                _ => {
                    let (x, y) = (int(&l)?, int(&r)?);
                    match op {
                        BinOp::Lt => Value::Bool(x < y),
                        BinOp::Le => Value::Bool(x <= y),
                        BinOp::Gt => Value::Bool(x > y),
                        BinOp::Ge => Value::Bool(x >= y),
                        // Shifts as the sizes use them (`1 << 26`): a count outside 0..63 or a value whose
                        // bits would be lost is an overflow, never a wrapped result.
                        BinOp::Shl => {
                            let v = u32::try_from(y).ok().filter(|&s| s < 63).and_then(|s| x.checked_shl(s));
                            match v {
                                Some(v) if v >> y == x => Value::Int(v),
                                _ => return Err(EvalError::Overflow),
                            }
                        }
                        BinOp::Shr => Value::Int(
                            u32::try_from(y)
                                .ok()
                                .filter(|&s| s < 64)
                                .and_then(|s| x.checked_shr(s))
                                .ok_or(EvalError::Overflow)?,
                        ),
                        BinOp::Add => Value::Int(x.checked_add(y).ok_or(EvalError::Overflow)?),
                        BinOp::Sub => Value::Int(x.checked_sub(y).ok_or(EvalError::Overflow)?),
                        BinOp::Mul => Value::Int(x.checked_mul(y).ok_or(EvalError::Overflow)?),
                        BinOp::Div => {
                            if y == 0 {
                                return Err(EvalError::DivisionByZero);
                            }
                            Value::Int(x.checked_div(y).ok_or(EvalError::Overflow)?)
                        }
                        BinOp::Rem => {
                            if y == 0 {
                                return Err(EvalError::DivisionByZero);
                            }
                            Value::Int(x.checked_rem(y).ok_or(EvalError::Overflow)?)
                        }
                        _ => unreachable!("logical operators are handled above"),
                    }
                }
            }
        }
        Node::Call(f, args) => {
            let vals = args.iter().map(|a| eval(a, slots).and_then(|v| int(&v))).collect::<Result<Vec<_>, _>>()?;
            match f {
                Func::CeilDiv => {
                    let (a, b) = (vals[0], vals[1]);
                    if b == 0 {
                        return Err(EvalError::DivisionByZero);
                    }
                    let q = a / b;
                    Value::Int(if (a % b != 0) && ((a < 0) == (b < 0)) { q + 1 } else { q })
                }
                Func::Min => Value::Int(*vals.iter().min().expect("arity checked at parse time")),
                Func::Max => Value::Int(*vals.iter().max().expect("arity checked at parse time")),
            }
        }
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    text: String,
    column: usize,
}

const OPS: [&str; 19] =
    ["||", "&&", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", ",", "<<", ">>"];

fn lex(source: &str) -> Result<Vec<Token>, ExprError> {
    let err = |column: usize, message: String| ExprError::Syntax { expr: source.to_owned(), column, message };
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            // Rust's separators and integer suffixes (`1_000`, `1u64`), as problem sizes are written.
            let digits = text.replace('_', "");
            let digits = ["usize", "isize", "u64", "i64", "u32", "i32"]
                .iter()
                .find_map(|s| digits.strip_suffix(s).filter(|d| !d.is_empty() && !d.starts_with("0x")))
                .map_or(digits.clone(), str::to_owned);
            let v = if let Some(hex) = digits.strip_prefix("0x") {
                i64::from_str_radix(hex, 16)
            } else {
                digits.parse::<i64>()
            }
            .map_err(|_| err(column, format!("`{text}` is not an integer")))?;
            out.push(Token { tok: Tok::Int(v), text, column });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let tok = match text.as_str() {
                "and" => Tok::Op("&&"),
                "or" => Tok::Op("||"),
                "not" => Tok::Op("!"),
                _ => Tok::Ident(text.clone()),
            };
            out.push(Token { tok, text, column });
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                s.push(chars[i]);
                i += 1;
            }
            if i == chars.len() {
                return Err(err(column, "unterminated string".into()));
            }
            i += 1;
            out.push(Token { tok: Tok::Str(s), text: chars[start..i].iter().collect(), column });
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPS
                .iter()
                .filter(|op| rest.starts_with(**op))
                .max_by_key(|op| op.len())
                .ok_or_else(|| err(column, format!("unexpected character `{c}`")))?;
            i += op.len();
            out.push(Token { tok: Tok::Op(op), text: (*op).to_owned(), column });
        }
    }
    Ok(out)
}

struct Parser<'a, R: Fn(&str) -> Option<usize>> {
    source: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    resolve: &'a R,
    known: &'a [&'a str],
}

impl<R: Fn(&str) -> Option<usize>> Parser<'_, R> {
    fn syntax(&self, column: usize, message: String) -> ExprError {
        ExprError::Syntax { expr: self.source.to_owned(), column, message }
    }

    fn end_column(&self) -> usize {
        self.source.chars().count() + 1
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.pos) {
            Some(Token { tok: Tok::Op(op), .. }) => Some(op),
            _ => None,
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), ExprError> {
        if self.eat(op) {
            return Ok(());
        }
        match self.tokens.get(self.pos) {
            Some(t) => Err(self.syntax(t.column, format!("expected `{op}`, found `{}`", t.text))),
            None => Err(self.syntax(self.end_column(), format!("expected `{op}` at the end"))),
        }
    }

    fn binary(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Node, ExprError>,
        chain: bool,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        loop {
            let Some(op) = self.peek_op() else { break };
            let Some((_, bin)) = ops.iter().find(|(o, _)| *o == op) else { break };
            self.pos += 1;
            let right = next(self)?;
            left = Node::Binary(*bin, Box::new(left), Box::new(right));
            if !chain {
                if let Some(op) = self.peek_op() {
                    if ops.iter().any(|(o, _)| *o == op) {
                        let column = self.tokens[self.pos].column;
                        return Err(self.syntax(column, "chained comparisons need parentheses or `&&`".into()));
                    }
                }
                break;
            }
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        self.binary(&[("||", BinOp::Or)], Self::and, true)
    }
    fn and(&mut self) -> Result<Node, ExprError> {
        self.binary(&[("&&", BinOp::And)], Self::cmp, true)
    }
    fn cmp(&mut self) -> Result<Node, ExprError> {
        self.binary(
            &[
                ("==", BinOp::Eq),
                ("!=", BinOp::Ne),
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ],
            Self::shift,
            false,
        )
    }
    fn shift(&mut self) -> Result<Node, ExprError> {
        self.binary(&[("<<", BinOp::Shl), (">>", BinOp::Shr)], Self::sum, true)
    }
    fn sum(&mut self) -> Result<Node, ExprError> {
        self.binary(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term, true)
    }
    fn term(&mut self) -> Result<Node, ExprError> {
        self.binary(&[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)], Self::unary, true)
    }
    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat("-") {
            return Ok(Node::Unary(UnOp::Neg, Box::new(self.unary()?)));
        }
        if self.eat("!") {
            return Ok(Node::Unary(UnOp::Not, Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let Some(t) = self.tokens.get(self.pos).cloned() else {
            return Err(self.syntax(self.end_column(), "expression ends too early".into()));
        };
        self.pos += 1;
        match t.tok {
            Tok::Int(v) => Ok(Node::Lit(Value::Int(v))),
            Tok::Str(s) => Ok(Node::Lit(Value::Str(s))),
            Tok::Op("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op(op) => Err(self.syntax(t.column, format!("unexpected `{op}`"))),
            Tok::Ident(name) => {
                if name == "true" || name == "True" {
                    return Ok(Node::Lit(Value::Bool(true)));
                }
                if name == "false" || name == "False" {
                    return Ok(Node::Lit(Value::Bool(false)));
                }
                if self.peek_op() == Some("(") {
                    let func = match name.as_str() {
                        "ceil_div" => Func::CeilDiv,
                        "min" => Func::Min,
                        "max" => Func::Max,
                        _ => {
                            return Err(self.syntax(
                                t.column,
                                format!("unknown function `{name}` (functions: ceil_div, min, max)"),
                            ))
                        }
                    };
                    self.pos += 1;
                    let mut args = vec![self.or()?];
                    while self.eat(",") {
                        args.push(self.or()?);
                    }
                    self.expect(")")?;
                    let ok = match func {
                        Func::CeilDiv => args.len() == 2,
                        _ => !args.is_empty(),
                    };
                    if !ok {
                        return Err(self.syntax(t.column, format!("`{name}` takes two arguments")));
                    }
                    return Ok(Node::Call(func, args));
                }
                match (self.resolve)(&name) {
                    Some(slot) => Ok(Node::Slot(slot)),
                    None => Err(ExprError::UnknownName {
                        name,
                        expr: self.source.to_owned(),
                        known: if self.known.is_empty() { "none".into() } else { self.known.join(", ") },
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str, names: &[&str], vals: &[i64]) -> Result<Value, EvalError> {
        let e = Expr::parse_with_names(src, names).unwrap();
        e.eval(&vals.iter().map(|v| Value::Int(*v)).collect::<Vec<_>>())
    }

    #[test]
    fn precedence_and_c_division() {
        assert_eq!(ev("1 + 2 * 3", &[], &[]), Ok(Value::Int(7)));
        assert_eq!(ev("(1 + 2) * 3", &[], &[]), Ok(Value::Int(9)));
        assert_eq!(ev("7 / 2", &[], &[]), Ok(Value::Int(3)));
        assert_eq!(ev("-7 % 3", &[], &[]), Ok(Value::Int(-1)));
        assert_eq!(
            ev("bm / tm * (bn / tn) >= 32", &["bm", "tm", "bn", "tn"], &[128, 8, 128, 8]),
            Ok(Value::Bool(true))
        );
        assert_eq!(ev("block * items <= 8192", &["block", "items"], &[1024, 16]), Ok(Value::Bool(false)));
    }

    #[test]
    fn functions() {
        assert_eq!(ev("ceil_div(n, b)", &["n", "b"], &[1000, 256]), Ok(Value::Int(4)));
        assert_eq!(ev("ceil_div(n, b)", &["n", "b"], &[1024, 256]), Ok(Value::Int(4)));
        assert_eq!(ev("min(a, 3, 9)", &["a"], &[5]), Ok(Value::Int(3)));
        assert_eq!(ev("max(a, 3) * 2", &["a"], &[5]), Ok(Value::Int(10)));
    }

    #[test]
    fn logic_and_strings() {
        let e = Expr::parse_with_names("layout == 'row' and not vec || x > 2", &["layout", "vec", "x"]).unwrap();
        let v = e.eval(&[Value::from("row"), Value::Bool(false), Value::Int(0)]).unwrap();
        assert_eq!(v, Value::Bool(true));
        let v = e.eval(&[Value::from("col"), Value::Bool(false), Value::Int(0)]).unwrap();
        assert_eq!(v, Value::Bool(false));
    }

    #[test]
    fn evaluation_errors() {
        assert_eq!(ev("a / b", &["a", "b"], &[1, 0]), Err(EvalError::DivisionByZero));
        assert_eq!(ev("a % b", &["a", "b"], &[1, 0]), Err(EvalError::DivisionByZero));
        assert_eq!(ev("a * a", &["a"], &[i64::MAX]), Err(EvalError::Overflow));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let e = Expr::parse_with_names("block * itms <= 8192", &["block", "items"]).unwrap_err();
        assert!(matches!(&e, ExprError::UnknownName { name, .. } if name == "itms"), "{e}");
        assert!(e.to_string().contains("known names: block, items"), "{e}");
        let e = Expr::parse_with_names("block * <= 8", &["block"]).unwrap_err();
        assert!(matches!(e, ExprError::Syntax { column: 9, .. }), "{e}");
        let e = Expr::parse_with_names("(block", &["block"]).unwrap_err();
        assert!(e.to_string().contains("expected `)`"), "{e}");
        let e = Expr::parse_with_names("a < b < c", &["a", "b", "c"]).unwrap_err();
        assert!(e.to_string().contains("chained"), "{e}");
        let e = Expr::parse_with_names("pow(a, 2)", &["a"]).unwrap_err();
        assert!(e.to_string().contains("unknown function `pow`"), "{e}");
        let e = Expr::parse_with_names("a $ b", &["a", "b"]).unwrap_err();
        assert!(e.to_string().contains("unexpected character `$`"), "{e}");
        let e = Expr::parse_with_names("a b", &["a", "b"]).unwrap_err();
        assert!(e.to_string().contains("unexpected `b`"), "{e}");
    }

    #[test]
    fn slots_lists_each_name_once() {
        let e = Expr::parse_with_names("c * a + c", &["a", "b", "c"]).unwrap();
        assert_eq!(e.slots(), vec![2, 0]);
    }
}
