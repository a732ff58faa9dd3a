//! Every stream's subjects in one token trie, so that "does a new stream's subject overlap
//! another stream's?" walks the new subjects' tokens instead of comparing each with every
//! stored subject (which took 12.8 s on the Raft thread for a third stream of 10,000).
//!
//! The new stream's subjects go into a trie of their own and the two tries are walked
//! together: a literal token meets the same literal or a `*`, a `*` meets anything, and a
//! `>` meets whatever is at its place or below. Per node, a count of the subjects beneath it
//! lets a `>` answer at once, and lets the walk skip what holds only the stream's own (old)
//! subjects. "Overlap" is `common::subject::overlap`'s, exactly: it also counts `a.>` as
//! overlapping `a` (which no subject matches both of), so the catalogue refuses what it
//! refused before.

use std::collections::HashMap;
use std::sync::Arc;
use tributary_proto::v1::{entity::Kind, Entity};

/// A subject some stream takes.
#[derive(Debug, Clone)]
struct Owned {
    stream: Arc<str>,
    subject: Arc<str>,
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    /// Subjects whose next (last) token is `>`.
    rest: Vec<Owned>,
    /// Subjects that end here.
    end: Vec<Owned>,
    /// Subjects in this node and below.
    count: usize,
}

/// Two subjects of different streams that some subject matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub mine: String,
    pub theirs: String,
    pub stream: String,
}

#[derive(Debug, Default)]
pub struct SubjectIndex {
    root: Node,
}

impl SubjectIndex {
    /// The subjects of every stream among `entities`.
    pub fn of<'a>(entities: impl IntoIterator<Item = &'a Entity>) -> Self {
        let mut index = Self::default();
        for e in entities {
            index.add(e);
        }
        index
    }

    /// Adds a stream's subjects (other entities have none).
    pub fn add(&mut self, e: &Entity) {
        if let Some(Kind::Stream(s)) = &e.kind {
            let stream: Arc<str> = Arc::from(s.name.as_str());
            for subject in &s.subjects {
                self.insert(&stream, subject);
            }
        }
    }

    /// Removes what `add` added for this version of a stream.
    pub fn remove(&mut self, e: &Entity) {
        if let Some(Kind::Stream(s)) = &e.kind {
            for subject in &s.subjects {
                remove(&mut self.root, &s.name, subject, &tokens(subject));
            }
        }
    }

    fn insert(&mut self, stream: &Arc<str>, subject: &str) {
        let owned = Owned {
            stream: stream.clone(),
            subject: Arc::from(subject),
        };
        let toks = tokens(subject);
        let mut node = &mut self.root;
        node.count += 1;
        for (i, t) in toks.iter().enumerate() {
            if *t == ">" && i + 1 == toks.len() {
                node.rest.push(owned);
                return;
            }
            node = child_mut(node, t);
            node.count += 1;
        }
        node.end.push(owned);
    }

    /// The first subject of `stream`'s new `subjects` that overlaps a subject of another
    /// stream. `own` are the subjects the stored version of `stream` has (in this index,
    /// and not counted as "another stream").
    pub fn first_overlap(
        &self,
        stream: &str,
        subjects: &[String],
        own: &[String],
    ) -> Option<Overlap> {
        let name: Arc<str> = Arc::from(stream);
        let (mut mine, mut theirs) = (SubjectIndex::default(), SubjectIndex::default());
        for s in subjects {
            mine.insert(&name, s);
        }
        for s in own {
            theirs.insert(&name, s);
        }
        let walk = Walk { stream };
        walk.meet(&mine.root, &self.root, Some(&theirs.root))
            .map(|(m, t)| Overlap {
                mine: m.subject.to_string(),
                theirs: t.subject.to_string(),
                stream: t.stream.to_string(),
            })
    }
}

fn tokens(subject: &str) -> Vec<&str> {
    subject.split('.').collect()
}

fn child_mut<'a>(node: &'a mut Node, token: &str) -> &'a mut Node {
    if token == "*" {
        node.star.get_or_insert_with(Box::default)
    } else {
        node.literal.entry(Box::from(token)).or_default()
    }
}

/// Removes one entry of `stream` for `subject`; returns whether it was there.
fn remove(node: &mut Node, stream: &str, subject: &str, toks: &[&str]) -> bool {
    let take = |list: &mut Vec<Owned>| match list
        .iter()
        .position(|o| &*o.stream == stream && &*o.subject == subject)
    {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    };
    let found = match toks {
        [] => take(&mut node.end),
        [">"] => take(&mut node.rest),
        [t, more @ ..] => {
            let (found, empty) = if *t == "*" {
                match node.star.as_deref_mut() {
                    Some(c) => (remove(c, stream, subject, more), c.count == 0),
                    None => (false, false),
                }
            } else {
                match node.literal.get_mut(*t) {
                    Some(c) => (remove(c, stream, subject, more), c.count == 0),
                    None => (false, false),
                }
            };
            if empty {
                if *t == "*" {
                    node.star = None;
                } else {
                    node.literal.remove(*t);
                }
            }
            found
        }
    };
    if found {
        node.count -= 1;
    }
    found
}

/// One overlap query: `mine` is the new subjects' trie, `theirs` the index, and `own` the
/// part of the index that is the stream's own old subjects (at the same place as `theirs`).
struct Walk<'s> {
    stream: &'s str,
}

impl Walk<'_> {
    /// Subjects of other streams in `theirs` and below.
    fn others(theirs: &Node, own: Option<&Node>) -> usize {
        theirs.count.saturating_sub(own.map_or(0, |o| o.count))
    }

    fn other<'a>(&self, list: &'a [Owned]) -> Option<&'a Owned> {
        list.iter().find(|o| &*o.stream != self.stream)
    }

    fn meet<'a, 'b>(
        &self,
        mine: &'a Node,
        theirs: &'b Node,
        own: Option<&Node>,
    ) -> Option<(&'a Owned, &'b Owned)> {
        if mine.count == 0 || Self::others(theirs, own) == 0 {
            return None;
        }
        if let (Some(m), Some(t)) = (mine.end.first(), self.other(&theirs.end)) {
            return Some((m, t));
        }
        if let Some(m) = mine.rest.first() {
            if let Some(t) = self.here_or_below(theirs, own) {
                return Some((m, t));
            }
        }
        if let Some(t) = self.other(&theirs.rest) {
            if let Some(m) = first_at_or_below(mine) {
                return Some((m, t));
            }
        }
        let own_literal = |k: &str| own.and_then(|o| o.literal.get(k));
        let own_star = own.and_then(|o| o.star.as_deref());
        // Literal meets the same literal: look up from the smaller side.
        if mine.literal.len() <= theirs.literal.len() {
            for (k, m) in &mine.literal {
                if let Some(t) = theirs.literal.get(k) {
                    if let Some(hit) = self.meet(m, t, own_literal(k)) {
                        return Some(hit);
                    }
                }
            }
        } else {
            for (k, t) in &theirs.literal {
                if let Some(m) = mine.literal.get(k) {
                    if let Some(hit) = self.meet(m, t, own_literal(k)) {
                        return Some(hit);
                    }
                }
            }
        }
        if let Some(t) = theirs.star.as_deref() {
            for m in mine.literal.values() {
                if let Some(hit) = self.meet(m, t, own_star) {
                    return Some(hit);
                }
            }
        }
        if let Some(m) = mine.star.as_deref() {
            for (k, t) in &theirs.literal {
                if let Some(hit) = self.meet(m, t, own_literal(k)) {
                    return Some(hit);
                }
            }
            if let Some(t) = theirs.star.as_deref() {
                if let Some(hit) = self.meet(m, t, own_star) {
                    return Some(hit);
                }
            }
        }
        None
    }

    /// A subject of another stream at `theirs` or below.
    fn here_or_below<'b>(&self, theirs: &'b Node, own: Option<&Node>) -> Option<&'b Owned> {
        if let Some(t) = self.other(&theirs.end).or_else(|| self.other(&theirs.rest)) {
            return Some(t);
        }
        let own_star = own.and_then(|o| o.star.as_deref());
        let children = theirs
            .literal
            .iter()
            .map(|(k, c)| (c, own.and_then(|o| o.literal.get(k))))
            .chain(theirs.star.as_deref().map(|c| (c, own_star)));
        for (child, own_child) in children {
            if Self::others(child, own_child) == 0 {
                continue;
            }
            if let Some(t) = self.here_or_below(child, own_child) {
                return Some(t);
            }
        }
        None
    }
}

/// Any subject at `node` or below.
fn first_at_or_below(node: &Node) -> Option<&Owned> {
    if let Some(o) = node.end.first().or_else(|| node.rest.first()) {
        return Some(o);
    }
    let children = node.literal.values().chain(node.star.as_deref());
    children.filter(|c| c.count > 0).find_map(first_at_or_below)
}

#[cfg(test)]
mod tests;
