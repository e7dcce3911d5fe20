//! One page of a keyset listing: the convention of every list of the data layer. A list takes
//! a [`PageRequest`] last (at most `limit` rows, after `after`) and returns a [`Page`]: the
//! rows and, when more follow, where the next page starts (`next`, passed back as the next
//! request's `after`). No OFFSET: every row is seen once while rows are inserted.

use crate::Error;

/// The most rows a page holds (tasks excepted: a page of tasks has no upper bound here).
pub const MAX_LIMIT: u32 = 500;

/// Which page of a listing to read: the first, or the one after `after` (the previous page's
/// [`Page::next`]), of at most `limit` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// Where the page starts: after this key; `None` for the first page.
    pub after: Option<C>,
    /// The most rows it holds: 1 to [`MAX_LIMIT`] (tasks: 1 or more).
    pub limit: u32,
}

impl<C> PageRequest<C> {
    /// The first page, of at most `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }
}

/// One page of a listing; `C` is where the next page starts (an opaque cursor for tasks, the
/// last row's key elsewhere).
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    /// The rows.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// The page of `rows`, fetched with [`fetch_count`]`(limit)`: one row more than the page
    /// holds says another page follows, which starts after the last row kept (`key`).
    pub(crate) fn of(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> C) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }
}

/// The rows to fetch for a page of `limit` (one more, to know whether another follows).
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`MAX_LIMIT`].
pub(crate) fn fetch_count(limit: u32) -> Result<i64, Error> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(i64::from(limit) + 1)
    } else {
        Err(Error::BadInput { message: "a page holds 1 to 500 rows" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_more_row_says_another_page_follows() {
        let page = Page::of(vec![1, 2, 3], 2, |n: &i32| *n);
        assert_eq!((page.items, page.next), (vec![1, 2], Some(2)));
        let last = Page::of(vec![1, 2], 2, |n: &i32| *n);
        assert_eq!((last.items, last.next), (vec![1, 2], None));
        assert!(fetch_count(0).is_err() && fetch_count(MAX_LIMIT + 1).is_err());
        assert_eq!(fetch_count(MAX_LIMIT).ok(), Some(i64::from(MAX_LIMIT) + 1));
    }
}
