//! The Huffman decoding automaton, derived from Appendix B at compile time.
//!
//! Each state is an internal node of the code tree (the bits read since the last
//! complete symbol), and each step consumes four bits. Four is the widest step that
//! completes at most one symbol, because the shortest code is five bits long; that
//! keeps a step's outcome a single optional byte and the table at 16 KiB, while
//! reading input two steps per byte instead of eight.

use super::codes::CODES;

/// The EOS symbol, which must never appear inside a string (RFC 7541 section 5.2).
const EOS: usize = 256;

/// Internal nodes of the code tree: a complete binary tree with 257 leaves has 256,
/// so a state fits in a `u8` and the table can be indexed without bounds checks.
const STATES: usize = 256;

/// Marks a child in [`Tree::children`] as a leaf holding the symbol in the low bits.
const LEAF: u16 = 0x8000;

/// One step of the automaton: where four bits lead from a state, and what they emit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    /// The state after the four bits.
    pub(super) next: u8,
    /// The symbol the four bits complete, if [`Step::EMIT`] is set.
    pub(super) symbol: u8,
    /// [`Step::EMIT`] and [`Step::EOS`] bits.
    pub(super) flags: u8,
}

impl Step {
    /// The four bits complete a symbol.
    pub(super) const EMIT: u8 = 1;
    /// The four bits complete EOS; the string is invalid.
    pub(super) const EOS: u8 = 2;
}

/// How a string may end in a given state, i.e. whether the bits read since the last
/// symbol are valid padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// At most seven bits, all ones: a prefix of EOS, as padding must be.
    Valid,
    /// More than seven bits: padding that long is an error even if all ones.
    TooLong,
    /// Seven bits or fewer, but not all ones.
    NotOnes,
}

/// `STEPS[state][nibble]`, with the root of the code tree as state 0.
pub(super) static STEPS: [[Step; 16]; STATES] = build_steps(&build_tree());

/// `ENDINGS[state]`: the verdict on a string that ends in `state`.
pub(super) static ENDINGS: [Ending; STATES] = build_endings(&build_tree());

/// The code tree, with each internal node's depth and whether its path is all ones.
struct Tree {
    /// Children of each internal node, for bit 0 and bit 1: an internal node's number
    /// or `LEAF | symbol`. Never 0 once built, since the root is nobody's child.
    children: [[u16; 2]; STATES],
    depth: [u8; STATES],
    all_ones: [bool; STATES],
}

/// Builds the tree from [`CODES`], failing the build if the code is not a complete
/// prefix code (every node has two children and no code extends another).
const fn build_tree() -> Tree {
    let mut tree = Tree {
        children: [[0; 2]; STATES],
        depth: [0; STATES],
        all_ones: [false; STATES],
    };
    tree.all_ones[0] = true;
    let mut nodes = 1;

    let mut symbol = 0;
    while symbol < CODES.len() {
        let (code, len) = CODES[symbol];
        let mut node = 0;
        let mut remaining = len;
        while remaining > 1 {
            remaining -= 1;
            let bit = ((code >> remaining) & 1) as usize;
            let child = tree.children[node][bit];
            if child == 0 {
                assert!(nodes < STATES, "Huffman code has too many internal nodes");
                tree.children[node][bit] = nodes as u16;
                tree.depth[nodes] = tree.depth[node] + 1;
                tree.all_ones[nodes] = tree.all_ones[node] && bit == 1;
                node = nodes;
                nodes += 1;
            } else {
                assert!(child & LEAF == 0, "Huffman code is not prefix-free");
                node = child as usize;
            }
        }
        let bit = (code & 1) as usize;
        assert!(
            tree.children[node][bit] == 0,
            "Huffman code is not prefix-free"
        );
        tree.children[node][bit] = LEAF | symbol as u16;
        symbol += 1;
    }

    assert!(nodes == STATES, "Huffman code is not complete");
    let mut node = 0;
    while node < STATES {
        assert!(
            tree.children[node][0] != 0 && tree.children[node][1] != 0,
            "Huffman code is not complete"
        );
        node += 1;
    }
    tree
}

const fn build_steps(tree: &Tree) -> [[Step; 16]; STATES] {
    let mut steps = [[Step {
        next: 0,
        symbol: 0,
        flags: 0,
    }; 16]; STATES];
    let mut state = 0;
    while state < STATES {
        let mut nibble = 0;
        while nibble < 16 {
            steps[state][nibble] = walk(tree, state, nibble);
            nibble += 1;
        }
        state += 1;
    }
    steps
}

/// Follows four bits from `state`, most significant first.
const fn walk(tree: &Tree, state: usize, nibble: usize) -> Step {
    let mut node = state;
    let mut step = Step {
        next: 0,
        symbol: 0,
        flags: 0,
    };
    let mut shift = 4;
    while shift > 0 {
        shift -= 1;
        let child = tree.children[node][(nibble >> shift) & 1];
        if child & LEAF == 0 {
            node = child as usize;
            continue;
        }
        let symbol = (child & !LEAF) as usize;
        if symbol == EOS {
            // Nothing after EOS matters: the string is rejected.
            return Step {
                next: 0,
                symbol: 0,
                flags: Step::EOS,
            };
        }
        assert!(
            step.flags & Step::EMIT == 0,
            "two symbols completed in one step"
        );
        step.flags |= Step::EMIT;
        step.symbol = symbol as u8;
        node = 0;
    }
    step.next = node as u8;
    step
}

const fn build_endings(tree: &Tree) -> [Ending; STATES] {
    let mut endings = [Ending::Valid; STATES];
    let mut state = 0;
    while state < STATES {
        endings[state] = if tree.depth[state] > 7 {
            Ending::TooLong
        } else if !tree.all_ones[state] {
            Ending::NotOnes
        } else {
            Ending::Valid
        };
        state += 1;
    }
    endings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_all_ones_states_up_to_seven_bits_end_validly() {
        let valid = ENDINGS.iter().filter(|&&e| e == Ending::Valid).count();
        // The root and the all-ones prefixes of length 1..=7.
        assert_eq!(valid, 8);
        assert_eq!(ENDINGS[0], Ending::Valid);
    }

    #[test]
    fn every_symbol_is_emitted_by_some_step() {
        let mut seen = [false; 256];
        for step in STEPS.iter().flatten() {
            if step.flags & Step::EMIT != 0 {
                seen[usize::from(step.symbol)] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn eos_is_reached_only_from_deep_all_ones_states() {
        let tree = build_tree();
        for (state, row) in STEPS.iter().enumerate() {
            for step in row {
                if step.flags & Step::EOS != 0 {
                    assert!(
                        tree.all_ones[state] && tree.depth[state] >= 26,
                        "state {state}"
                    );
                }
            }
        }
    }
}
