//! Where a field path (`load.stages[1].duration`) sits in the scenario, for errors found after
//! the typed parse (cross-field rules, checks against the cluster). The expanded text is parsed a
//! second time by serde-saphyr into a tree that keeps the span of every key and value, so the
//! position comes from the YAML parser itself, whatever the layout (block, flow, comments,
//! quoting). A value on its key's line is pointed at; a value that starts below its key (a
//! block mapping or sequence) points at the key. A path that is not in the file gives its
//! deepest ancestor that is.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::expand::Expanded;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Parse `a.b[2].c` into segments.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                segs.push(Seg::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Seg::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

/// Positions of field paths in the file as written: looked up in the spans of the expanded text
/// and mapped back through the expansion.
pub struct Positions<'a> {
    expanded: &'a Expanded,
    tree: Option<Spanned<Node>>,
}

impl<'a> Positions<'a> {
    /// `tree` is [`Node::parse`] of the expanded text (`None` when it did not parse).
    pub fn new(expanded: &'a Expanded, tree: Option<Spanned<Node>>) -> Self {
        Positions { expanded, tree }
    }

    /// The 1-based (line, column) of `path`, or of its deepest ancestor in the file.
    pub fn of(&self, path: &str) -> Option<(usize, usize)> {
        let (line, column) = Node::locate(self.tree.as_ref()?, path)?;
        Some(self.expanded.original_position(line, column))
    }
}

/// A node of the document with the spans of its children.
#[derive(Debug, Default)]
pub struct Node {
    entries: Vec<Entry>,
    items: Vec<Spanned<Node>>,
}

#[derive(Debug)]
struct Entry {
    key: Option<String>,
    key_at: Location,
    value: Spanned<Node>,
}

/// The (line, column) of a location, 1-based, characters; `None` for an unknown one.
fn position(at: &Location) -> Option<(usize, usize)> {
    (at.line() > 0).then(|| (at.line() as usize, at.column().max(1) as usize))
}

impl Node {
    /// The spans of `text` (already expanded), with the scenario's budget.
    pub fn parse(text: &str) -> Result<Spanned<Node>, serde_saphyr::Error> {
        let options = serde_saphyr::options! {
            budget: super::budget(),
            with_snippet: false,
            // Only the shape is wanted here; a repeat was refused by the typed parse already.
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        };
        serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options)
    }

    /// The character ranges (offset, length) of every scalar of the document, keys included.
    pub fn scalars(root: &Spanned<Node>) -> Vec<(usize, usize)> {
        fn walk(node: &Spanned<Node>, out: &mut Vec<(usize, usize)>) {
            let span = |at: &Location| (at.span().offset() as usize, at.span().len() as usize);
            if node.value.entries.is_empty() && node.value.items.is_empty() {
                out.push(span(&node.referenced));
            }
            for e in &node.value.entries {
                out.push(span(&e.key_at));
                walk(&e.value, out);
            }
            for item in &node.value.items {
                walk(item, out);
            }
        }
        let mut out = Vec::new();
        walk(root, &mut out);
        out
    }

    /// The position of the node at `path`, or of its deepest ancestor in the document.
    pub fn locate(root: &Spanned<Node>, path: &str) -> Option<(usize, usize)> {
        let mut node = root;
        let mut found = None;
        for seg in parse_path(path) {
            match seg {
                Seg::Key(k) => {
                    let Some(e) = node
                        .value
                        .entries
                        .iter()
                        .find(|e| e.key.as_deref() == Some(&k))
                    else {
                        return found;
                    };
                    let below = e.value.referenced.line() > e.key_at.line();
                    found = if below {
                        position(&e.key_at)
                    } else {
                        position(&e.value.referenced).or(position(&e.key_at))
                    }
                    .or(found);
                    node = &e.value;
                }
                Seg::Index(i) => {
                    let Some(item) = node.value.items.get(i) else {
                        return found;
                    };
                    found = position(&item.referenced).or(found);
                    node = item;
                }
            }
        }
        found
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node {
            items,
            ..Node::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push(Entry {
                key: key.value.0,
                key_at: key.referenced,
                value,
            });
        }
        Ok(Node {
            entries,
            ..Node::default()
        })
    }
}

/// A mapping key as text; a key that is a collection has none.
struct Key(Option<String>);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Key(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Key(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\nload:\n  stages:\n    - { duration: 2m, users: 100 }\n    - duration: 5m\n      users: 100\n  requests:\n    - path: /\nworkload:\n  local:\n    command: [a]\n";

    fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
        Node::locate(&Node::parse(text).expect("parses"), path)
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("load.stages[1].duration"),
            vec![
                Seg::Key("load".into()),
                Seg::Key("stages".into()),
                Seg::Index(1),
                Seg::Key("duration".into())
            ]
        );
    }

    #[test]
    fn finds_block_and_flow_nodes() {
        assert_eq!(locate(DOC, "name"), Some((1, 7)));
        assert_eq!(locate(DOC, "load.stages[0].users"), Some((4, 30)));
        assert_eq!(locate(DOC, "load.stages[1].duration"), Some((5, 17)));
        assert_eq!(locate(DOC, "load.stages[1].users"), Some((6, 14)));
        assert_eq!(locate(DOC, "load.requests[0].path"), Some((8, 13)));
        assert_eq!(locate(DOC, "workload.local.command"), Some((11, 14)));
        assert_eq!(locate(DOC, "workload"), Some((9, 1)));
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(locate("näme: x\nname: ü\n", "name"), Some((2, 7)));
        assert_eq!(locate("a:\n  b: [x]\n  üü: 1\n", "a.b"), Some((2, 6)));
    }

    #[test]
    fn a_comment_or_a_quoted_lookalike_is_no_key() {
        let doc = "target: { x: \"b, url: c\", url: d }\n";
        assert_eq!(locate(doc, "target.url"), Some((1, 32)));
        let doc = "target:\n  # url: a\n  url: c\n";
        assert_eq!(locate(doc, "target.url"), Some((3, 8)));
    }

    #[test]
    fn missing_leaf_gives_the_parent() {
        assert_eq!(locate(DOC, "load.thresholds"), Some((2, 1)));
        assert_eq!(locate(DOC, "load.stages[7]"), Some((3, 3)));
    }
}
