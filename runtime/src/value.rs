//! Rows as the dataflow carries them: small copyable values, strings interned per run.
//!
//! Every string a run can ever see is known before it starts: the program's constants, the
//! facts of the program and the workloads, and the node names of the configuration. Rules
//! never build new strings (arithmetic works on integers; aggregates return integers or
//! existing values). So each run interns all of them up front, sorted by their bytes, and a
//! string becomes its index: comparing two indexes compares the strings, and [`Val`] orders
//! exactly as [`ir::Value`] does (integers before strings before booleans). Every process of a
//! cluster builds the same table from the same inputs, so indexes agree across processes.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use graft_compiler::ir::{self, ArithOp, CompareOp, Value};
use serde::{Deserialize, Serialize};

/// One value of a row. The variant order matches [`ir::Value`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Val {
    Int(i64),
    /// An index into the run's [`Interner`].
    Str(u32),
    Bool(bool),
}

impl Val {
    fn as_int(self) -> Option<i64> {
        match self {
            Val::Int(value) => Some(value),
            Val::Str(_) | Val::Bool(_) => None,
        }
    }
}

/// How many values a row holds inline; longer rows (rare) live on the heap.
const INLINE: usize = 6;

/// A fact's values (column 0 is its location), a join key (the location first), or a rule's
/// binding.
///
/// Rows of up to [`INLINE`] values are stored inline, packed as a tag and 64 bits per value,
/// so that building, cloning and dropping them allocates nothing: the dataflow's operators
/// copy rows all the time. Rows compare as the sequences of their [`Val`]s, whatever their
/// storage.
///
/// Hashing a row hashes only its first value, which for facts and keys is the location:
/// timely exchanges data by this hash, so all facts and all work of one node stay on one
/// worker, and only messages between nodes cross workers.
#[derive(Clone)]
pub(crate) enum Row {
    /// `len` values; the tags and bits of unused positions are zero.
    Inline {
        len: u8,
        tags: [Tag; INLINE],
        bits: [u64; INLINE],
    },
    Heap(Box<[Val]>),
}

// The layout the tag enum buys (checked when compiling).
const _: () = assert!(std::mem::size_of::<Row>() == 56);

/// Which [`Val`] variant an inline value is. An enum rather than a byte: the bytes it never
/// takes let the compiler tell [`Row`]'s variants apart without a separate discriminant, so
/// that a row takes 56 bytes rather than 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Tag {
    Int = 0,
    Str = 1,
    Bool = 2,
}

impl From<Tag> for u8 {
    fn from(tag: Tag) -> u8 {
        match tag {
            Tag::Int => 0,
            Tag::Str => 1,
            Tag::Bool => 2,
        }
    }
}

fn pack(val: Val) -> (Tag, u64) {
    match val {
        Val::Int(number) => (Tag::Int, u64::from_ne_bytes(number.to_ne_bytes())),
        Val::Str(index) => (Tag::Str, u64::from(index)),
        Val::Bool(flag) => (Tag::Bool, u64::from(flag)),
    }
}

fn unpack(tag: Tag, bits: u64) -> Val {
    match tag {
        Tag::Int => Val::Int(i64::from_ne_bytes(bits.to_ne_bytes())),
        Tag::Str => Val::Str(u32::try_from(bits).unwrap_or(u32::MAX)),
        Tag::Bool => Val::Bool(bits != 0),
    }
}

/// The hash of a row of `len` values, given packed: the same for a row and for a projection
/// of another row onto columns holding the same values.
///
/// One round per value's bits, and one for the length and all the tags together (two bits
/// each, rotated in): every fact a worker stores or looks up is hashed, so rounds count.
fn hash_packed(len: usize, values: impl Iterator<Item = (Tag, u64)>) -> u64 {
    let mut hasher = graft_eval::hash::FastHasher::default();
    let mut tags: u64 = 0;
    for (tag, bits) in values {
        hasher.write_u64(bits);
        tags = tags.rotate_left(2) ^ u64::from(u8::from(tag));
    }
    hasher.write_u64((tags << 8) ^ len as u64);
    hasher.finish()
}

/// A [`Val`] as a row stores it: its tag and 64 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed(Tag, u64);

impl Packed {
    pub(crate) fn of(val: Val) -> Packed {
        let (tag, bits) = pack(val);
        Packed(tag, bits)
    }

    pub(crate) fn val(self) -> Val {
        unpack(self.0, self.1)
    }
}

impl Default for Row {
    fn default() -> Row {
        Row::Inline {
            len: 0,
            tags: [Tag::Int; INLINE],
            bits: [0; INLINE],
        }
    }
}

impl Row {
    /// The row of these values.
    pub(crate) fn from_vals(values: &[Val]) -> Row {
        if values.len() > INLINE {
            return Row::Heap(values.into());
        }
        let mut tags = [Tag::Int; INLINE];
        let mut bits = [0; INLINE];
        for (index, value) in values.iter().enumerate() {
            (tags[index], bits[index]) = pack(*value);
        }
        Row::Inline {
            len: u8::try_from(values.len()).unwrap_or(0),
            tags,
            bits,
        }
    }

    /// The row of `len` values computed by `value`, or `None` as soon as one is `None`
    /// (built in place: keys and heads are built for every binding).
    pub(crate) fn try_build(
        len: usize,
        mut value: impl FnMut(usize) -> Option<Val>,
    ) -> Option<Row> {
        Row::try_build_packed(len, |index| value(index).map(Packed::of))
    }

    /// A hash of all of the row's values (equal rows hash equally: a row's storage is fixed
    /// by its length).
    pub(crate) fn full_hash(&self) -> u64 {
        match self {
            Row::Inline { len, tags, bits } => {
                let len = usize::from(*len);
                hash_packed(len, (0..len).map(|index| (tags[index], bits[index])))
            }
            Row::Heap(values) => hash_packed(values.len(), values.iter().map(|value| pack(*value))),
        }
    }

    /// The [`full_hash`](Row::full_hash) of the row of this row's values at `columns`, without
    /// building that row (`None` if some column is past the row's end).
    pub(crate) fn columns_hash(&self, columns: &[usize]) -> Option<u64> {
        if columns.iter().any(|column| *column >= self.len()) {
            return None;
        }
        Some(match self {
            Row::Inline { tags, bits, .. } => hash_packed(
                columns.len(),
                columns.iter().map(|column| (tags[*column], bits[*column])),
            ),
            Row::Heap(values) => hash_packed(
                columns.len(),
                columns.iter().map(|column| pack(values[*column])),
            ),
        })
    }

    /// Whether this row's values at `columns` are, in order, `key`'s values.
    pub(crate) fn columns_are(&self, columns: &[usize], key: &Row) -> bool {
        columns.len() == key.len()
            && columns.iter().enumerate().all(|(index, column)| {
                self.packed(*column)
                    .is_some_and(|value| key.packed(index) == Some(value))
            })
    }

    /// Whether this row's and `other`'s values at `columns` are equal.
    pub(crate) fn same_columns(&self, other: &Row, columns: &[usize]) -> bool {
        columns.iter().all(|column| {
            self.packed(*column)
                .is_some_and(|value| other.packed(*column) == Some(value))
        })
    }

    /// A row of `len` zeros.
    pub(crate) fn zeros(len: usize) -> Row {
        if len > INLINE {
            return Row::Heap(vec![Val::Int(0); len].into());
        }
        Row::Inline {
            len: u8::try_from(len).unwrap_or(0),
            tags: [Tag::Int; INLINE],
            bits: [0; INLINE],
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Row::Inline { len, .. } => usize::from(*len),
            Row::Heap(values) => values.len(),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<Val> {
        match self {
            Row::Inline { len, tags, bits } => {
                (index < usize::from(*len)).then(|| unpack(tags[index], bits[index]))
            }
            Row::Heap(values) => values.get(index).copied(),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Val> + '_ {
        (0..self.len()).filter_map(move |index| self.get(index))
    }

    /// The value at `index` as stored: packed values are equal exactly when the values are,
    /// and moving them between rows skips decoding and encoding.
    pub(crate) fn packed(&self, index: usize) -> Option<Packed> {
        match self {
            Row::Inline { len, tags, bits } => {
                (index < usize::from(*len)).then(|| Packed(tags[index], bits[index]))
            }
            Row::Heap(values) => values.get(index).map(|value| Packed::of(*value)),
        }
    }

    /// Sets the value at `index` from its packed form; `None` (and no change) if the row is
    /// shorter.
    pub(crate) fn set_packed(&mut self, index: usize, value: Packed) -> Option<()> {
        match self {
            Row::Inline { len, tags, bits } => {
                if index >= usize::from(*len) {
                    return None;
                }
                (tags[index], bits[index]) = (value.0, value.1);
            }
            Row::Heap(values) => *values.get_mut(index)? = unpack(value.0, value.1),
        }
        Some(())
    }

    /// [`try_build`](Row::try_build) from packed values.
    pub(crate) fn try_build_packed(
        len: usize,
        mut value: impl FnMut(usize) -> Option<Packed>,
    ) -> Option<Row> {
        if len > INLINE {
            let values: Option<Vec<Val>> = (0..len)
                .map(|index| value(index).map(Packed::val))
                .collect();
            return values.map(|values| Row::Heap(values.into()));
        }
        let mut tags = [Tag::Int; INLINE];
        let mut bits = [0; INLINE];
        for index in 0..len {
            let Packed(tag, word) = value(index)?;
            (tags[index], bits[index]) = (tag, word);
        }
        Some(Row::Inline {
            len: u8::try_from(len).unwrap_or(0),
            tags,
            bits,
        })
    }

    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<Val> {
        self.iter().collect()
    }
}

impl FromIterator<Val> for Row {
    fn from_iter<I: IntoIterator<Item = Val>>(iter: I) -> Row {
        let mut tags = [Tag::Int; INLINE];
        let mut bits = [0; INLINE];
        let mut len = 0;
        let mut iter = iter.into_iter();
        for value in iter.by_ref() {
            if len == INLINE {
                let mut values: Vec<Val> = (0..INLINE).map(|i| unpack(tags[i], bits[i])).collect();
                values.push(value);
                values.extend(iter);
                return Row::Heap(values.into());
            }
            (tags[len], bits[len]) = pack(value);
            len += 1;
        }
        Row::Inline {
            len: u8::try_from(len).unwrap_or(0),
            tags,
            bits,
        }
    }
}

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        match (self, other) {
            (
                Row::Inline { len, tags, bits },
                Row::Inline {
                    len: other_len,
                    tags: other_tags,
                    bits: other_bits,
                },
            ) => len == other_len && tags == other_tags && bits == other_bits,
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}

impl Eq for Row {}

impl PartialOrd for Row {
    fn partial_cmp(&self, other: &Row) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Row {
    fn cmp(&self, other: &Row) -> Ordering {
        match (self, other) {
            (
                Row::Inline { len, tags, bits },
                Row::Inline {
                    len: other_len,
                    tags: other_tags,
                    bits: other_bits,
                },
            ) => {
                let common = usize::from(*len.min(other_len));
                for index in 0..common {
                    let (tag, other_tag) = (tags[index], other_tags[index]);
                    let order = tag.cmp(&other_tag).then_with(|| {
                        if tag == Tag::Int {
                            let lhs = i64::from_ne_bytes(bits[index].to_ne_bytes());
                            let rhs = i64::from_ne_bytes(other_bits[index].to_ne_bytes());
                            lhs.cmp(&rhs)
                        } else {
                            bits[index].cmp(&other_bits[index])
                        }
                    });
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                len.cmp(other_len)
            }
            _ => self.iter().cmp(other.iter()),
        }
    }
}

impl Hash for Row {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.get(0).hash(state);
    }
}

impl std::fmt::Debug for Row {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // With its length first, as bincode (the cluster's wire format) requires.
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for value in self.iter() {
            seq.serialize_element(&value)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Row, D::Error> {
        let values = Vec::<Val>::deserialize(deserializer)?;
        Ok(Row::from_vals(&values))
    }
}

/// The strings of one run, sorted by their bytes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interner {
    strings: Vec<Arc<str>>,
}

impl Interner {
    /// A table of exactly these strings.
    pub(crate) fn new(strings: BTreeSet<Arc<str>>) -> Interner {
        Interner {
            strings: strings.into_iter().collect(),
        }
    }

    /// The value of `value`; `None` for a string the run did not intern (it cannot occur in
    /// any fact, so whatever looks for it finds nothing).
    pub(crate) fn val(&self, value: &Value) -> Option<Val> {
        match value {
            Value::Int(number) => Some(Val::Int(*number)),
            Value::Bool(flag) => Some(Val::Bool(*flag)),
            Value::Str(text) => self.string(text).map(Val::Str),
        }
    }

    pub(crate) fn string(&self, text: &str) -> Option<u32> {
        self.strings
            .binary_search_by(|probe| probe.as_ref().cmp(text))
            .ok()
            .and_then(|index| u32::try_from(index).ok())
    }

    /// The value a [`Val`] stands for.
    pub(crate) fn value(&self, val: Val) -> Value {
        match val {
            Val::Int(number) => Value::Int(number),
            Val::Bool(flag) => Value::Bool(flag),
            Val::Str(index) => self
                .strings
                .get(index as usize)
                .map_or_else(|| Value::str(""), |text| Value::Str(text.clone())),
        }
    }

    /// The row of a fact's values; `None` if some string was not interned.
    pub(crate) fn row(&self, values: &[Value]) -> Option<Row> {
        values
            .iter()
            .map(|value| self.val(value))
            .collect::<Option<Row>>()
    }
}

/// Adds every string in `value` to `strings`.
pub(crate) fn collect_string(value: &Value, strings: &mut BTreeSet<Arc<str>>) {
    if let Value::Str(text) = value {
        strings.insert(text.clone());
    }
}

/// Adds every string constant of `term` to `strings`.
pub(crate) fn collect_term_strings(term: &ir::Term, strings: &mut BTreeSet<Arc<str>>) {
    match term {
        ir::Term::Const(value) | ir::Term::NamedConst(_, value) => collect_string(value, strings),
        ir::Term::Arith(_, lhs, rhs) => {
            collect_term_strings(lhs, strings);
            collect_term_strings(rhs, strings);
        }
        ir::Term::Var(_) | ir::Term::Wildcard => {}
    }
}

/// A term over a binding's slots, with its constants interned.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Slot(usize),
    Const(Val),
    /// A string constant that no fact of the run contains: nothing equals it.
    Missing,
    Arith(ArithOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// The term as an expression over slots (variables are slots by their id).
    pub(crate) fn of(term: &ir::Term, interner: &Interner) -> Expr {
        match term {
            ir::Term::Var(var) => Expr::Slot(var.index()),
            ir::Term::Wildcard => Expr::Missing,
            ir::Term::Const(value) | ir::Term::NamedConst(_, value) => {
                interner.val(value).map_or(Expr::Missing, Expr::Const)
            }
            ir::Term::Arith(op, lhs, rhs) => Expr::Arith(
                *op,
                Box::new(Expr::of(lhs, interner)),
                Box::new(Expr::of(rhs, interner)),
            ),
        }
    }

    /// The values of `exprs` over `slots`, or `None` as soon as one fails.
    pub(crate) fn eval_all(exprs: &[Expr], slots: &Row) -> Option<Row> {
        Row::try_build_packed(exprs.len(), |index| exprs[index].eval_packed(slots))
    }

    /// [`eval`](Expr::eval), packed (a slot is copied as stored).
    fn eval_packed(&self, slots: &Row) -> Option<Packed> {
        match self {
            Expr::Slot(slot) => slots.packed(*slot),
            Expr::Const(value) => Some(Packed::of(*value)),
            Expr::Missing => None,
            Expr::Arith(..) => self.eval(slots).map(Packed::of),
        }
    }

    /// The value over `slots`; `None` when arithmetic fails (non-integer, division by zero,
    /// overflow) or a string constant is missing: the rule then does not fire.
    pub(crate) fn eval(&self, slots: &Row) -> Option<Val> {
        match self {
            Expr::Slot(slot) => slots.get(*slot),
            Expr::Const(value) => Some(*value),
            Expr::Missing => None,
            Expr::Arith(op, lhs, rhs) => {
                let lhs = lhs.eval(slots)?.as_int()?;
                let rhs = rhs.eval(slots)?.as_int()?;
                let result = match op {
                    ArithOp::Add => lhs.checked_add(rhs),
                    ArithOp::Sub => lhs.checked_sub(rhs),
                    ArithOp::Mul => lhs.checked_mul(rhs),
                    ArithOp::Div => {
                        if rhs == 0 {
                            None
                        } else {
                            lhs.checked_div(rhs)
                        }
                    }
                };
                result.map(Val::Int)
            }
        }
    }
}

/// A comparison as the language defines it: the IR's own, over interned values (which order
/// as the values they stand for).
pub(crate) fn compare(op: CompareOp, lhs: Val, rhs: Val) -> bool {
    graft_compiler::ir::eval_compare(op, &lhs, &rhs)
}

#[cfg(test)]
mod tests {
    use super::{Packed, Row, Val};

    /// Inline and heap rows order, compare and round-trip exactly as their values do.
    #[test]
    fn rows_order_as_their_values() {
        let values = [
            Val::Int(i64::MIN),
            Val::Int(-1),
            Val::Int(0),
            Val::Int(i64::MAX),
            Val::Str(0),
            Val::Str(u32::MAX),
            Val::Bool(false),
            Val::Bool(true),
        ];
        let mut rows: Vec<Vec<Val>> = vec![Vec::new()];
        for (index, value) in values.iter().enumerate() {
            rows.push(vec![*value]);
            rows.push(vec![*value, values[(index + 3) % values.len()]]);
            rows.push(vec![values[(index + 5) % values.len()]; 7]);
            let mut long: Vec<Val> = values.to_vec();
            long.rotate_left(index);
            rows.push(long);
        }
        for lhs in &rows {
            let left = Row::from_vals(lhs);
            assert_eq!(left.to_vec(), *lhs);
            assert_eq!(lhs.iter().copied().collect::<Row>(), left);
            for rhs in &rows {
                let right = Row::from_vals(rhs);
                assert_eq!(left.cmp(&right), lhs.cmp(rhs), "{lhs:?} vs {rhs:?}");
                assert_eq!(left == right, lhs == rhs);
            }
        }
        let mut row = Row::zeros(3);
        assert_eq!(row.set_packed(2, Packed::of(Val::Str(4))), Some(()));
        assert_eq!(row.set_packed(3, Packed::of(Val::Str(4))), None);
        assert_eq!(row.to_vec(), vec![Val::Int(0), Val::Int(0), Val::Str(4)]);
        let mut long = Row::zeros(8);
        assert_eq!(long.set_packed(7, Packed::of(Val::Bool(true))), Some(()));
        assert_eq!(long.packed(7).map(Packed::val), Some(Val::Bool(true)));
    }

    /// A row's columns hash and compare as the row of those values would, inline or not: the
    /// join indexes rely on it, storing no key.
    #[test]
    fn columns_hash_and_compare_as_their_projection() {
        let rows = [
            Row::from_vals(&[Val::Str(1), Val::Int(-3), Val::Bool(true), Val::Int(7)]),
            Row::from_vals(&(0..9).map(Val::Int).collect::<Vec<_>>()),
        ];
        for row in &rows {
            for columns in [vec![], vec![0], vec![3, 1], vec![2, 2, 0]] {
                let key: Row = columns.iter().filter_map(|c| row.get(*c)).collect();
                assert_eq!(row.columns_hash(&columns), Some(key.full_hash()));
                assert!(row.columns_are(&columns, &key));
                assert!(row.same_columns(row, &columns));
                let other = Row::try_build(key.len(), |i| {
                    (i == 0).then_some(Val::Int(99)).or(key.get(i))
                });
                if let Some(other) = other.filter(|other| *other != key) {
                    assert!(!row.columns_are(&columns, &other));
                }
            }
            assert_eq!(row.columns_hash(&[20]), None);
        }
    }
}
