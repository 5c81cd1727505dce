//! Where each field of a YAML document starts, so that a validation error can name its line.
//!
//! serde_yaml reports lines for syntax and type errors only; a topology problem (two shards
//! owning a slot) is found after deserializing, when positions are gone. This walks the same
//! text with yaml-rust2's event parser and records the line of every node under a path such as
//! `shards[1].slots[0]`.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Paths (`a.b[2].c`) to 1-based lines. Empty when the text does not parse.
pub fn index(text: &str) -> HashMap<String, usize> {
    let mut walker = Walker::default();
    let mut parser = Parser::new_from_str(text);
    if parser.load(&mut walker, false).is_err() {
        return HashMap::new();
    }
    walker.lines
}

enum Frame {
    /// A mapping: the path of the key whose value comes next, if a key was read.
    Map {
        base: String,
        key: Option<String>,
    },
    Seq {
        base: String,
        next: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Walker {
    /// The path of the node that starts now, or `None` when it is a mapping key.
    fn node_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key, .. }) => key.take(),
            Some(Frame::Seq { base, next }) => {
                let path = format!("{base}[{next}]");
                *next += 1;
                Some(path)
            }
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => match self.node_path() {
                Some(path) => {
                    self.lines.entry(path).or_insert(line);
                }
                None => {
                    if let Some(Frame::Map { base, key }) = self.stack.last_mut() {
                        let path = if base.is_empty() {
                            value
                        } else {
                            format!("{base}.{value}")
                        };
                        self.lines.insert(path.clone(), line);
                        *key = Some(path);
                    }
                }
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key has no path of its own.
                let base = self.node_path().unwrap_or_default();
                self.lines.entry(base.clone()).or_insert(line);
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map { base, key: None },
                    _ => Frame::Seq { base, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_of_nested_fields() {
        let text = "a: 1\nlist:\n  - x: 2\n    y: [3, 4]\n  - { x: 5 }\n";
        let lines = super::index(text);
        assert_eq!(lines["a"], 1);
        assert_eq!(lines["list"], 2);
        assert_eq!(lines["list[0]"], 3);
        assert_eq!(lines["list[0].y[1]"], 4);
        assert_eq!(lines["list[1].x"], 5);
    }
}
