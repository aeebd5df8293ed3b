//! faiss's array inverted lists (`ilar`), shared by every IVF record: `nlist` lists of
//! `code_size`-byte codes and their i64 ids, with the list sizes stored `full` or `sprs`
//! (docs/file-formats.md).

use crate::error::{Error, Result};
use crate::io::bytes::{ByteReader, ByteWriter};

/// fourcc of array inverted lists.
pub const INVLISTS_ARRAY: &[u8; 4] = b"ilar";
/// fourcc of "no inverted lists" (an index written without them).
pub const INVLISTS_NONE: &[u8; 4] = b"il00";

fn cc_str(cc: &[u8; 4]) -> String {
    String::from_utf8_lossy(cc).to_string()
}

/// Per list, its code bytes and its ids.
pub type Lists = (Vec<Vec<u8>>, Vec<Vec<i64>>);

/// Reads the inverted lists of an IVF whose header says `nlist` lists of `code_size`-byte codes
/// and at most `ntotal` vectors; every count is checked before it allocates.
pub fn read_array_lists(
    r: &mut ByteReader<'_>,
    nlist: usize,
    code_size: usize,
    ntotal: usize,
) -> Result<Lists> {
    let ilcc = r.fourcc("inverted lists fourcc")?;
    if &ilcc == INVLISTS_NONE {
        return Err(Error::Unsupported(
            "IVF file without inverted lists (il00) cannot be searched".into(),
        ));
    }
    if &ilcc != INVLISTS_ARRAY {
        return Err(Error::Unsupported(format!(
            "inverted lists of type '{}' are not supported (array lists 'ilar' only)",
            cc_str(&ilcc)
        )));
    }
    let il_nlist = r.u64("inverted lists nlist")?;
    if il_nlist != nlist as u64 {
        return Err(r.error(format!(
            "inverted lists count {il_nlist} differs from nlist {nlist}"
        )));
    }
    let cs = r.u64("code_size")?;
    if cs != code_size as u64 {
        return Err(r.error(format!(
            "inverted lists code_size {cs} differs from the index's {code_size}"
        )));
    }
    let list_type = r.fourcc("list type")?;
    let mut sizes = vec![0u64; nlist];
    match &list_type {
        b"full" => {
            let n = r.u64("list sizes count")?;
            if n != nlist as u64 {
                return Err(r.error(format!("{n} list sizes for nlist {nlist}")));
            }
            sizes = r.u64_vec(n, "list sizes")?;
        }
        b"sprs" => {
            let n = r.u64("sparse list sizes count")?;
            if n % 2 != 0 {
                return Err(r.error(format!("odd sparse size vector length {n}")));
            }
            let pairs = r.u64_vec(n, "sparse list sizes")?;
            for c in pairs.chunks_exact(2) {
                let l = usize::try_from(c[0])
                    .ok()
                    .filter(|&l| l < nlist)
                    .ok_or_else(|| {
                        r.error(format!(
                            "sparse list number {} out of range [0, {nlist})",
                            c[0]
                        ))
                    })?;
                sizes[l] = c[1];
            }
        }
        other => {
            return Err(r.error(format!("unknown inverted list type '{}'", cc_str(other))));
        }
    }
    let stored: u128 = sizes.iter().map(|&s| s as u128).sum();
    if stored > ntotal as u128 {
        return Err(r.error(format!(
            "lists hold {stored} vectors but ntotal is {ntotal}"
        )));
    }
    let mut codes = Vec::with_capacity(nlist);
    let mut ids = Vec::with_capacity(nlist);
    for (l, &s) in sizes.iter().enumerate() {
        if s == 0 {
            codes.push(Vec::new());
            ids.push(Vec::new());
            continue;
        }
        let nbytes = s
            .checked_mul(code_size as u64)
            .ok_or_else(|| r.error("list size overflows"))?;
        codes.push(r.u8_vec(nbytes, &format!("codes of list {l}"))?);
        ids.push(r.i64_vec(s, &format!("ids of list {l}"))?);
    }
    Ok((codes, ids))
}

/// Writes `ilar` lists: `full` sizes iff more than half the lists are non-empty (faiss's rule).
/// `codes(l)` gives list `l`'s code bytes.
pub fn write_array_lists<'a>(
    w: &mut ByteWriter,
    code_size: usize,
    ids: &[Vec<i64>],
    codes: impl Fn(usize) -> &'a [u8],
) {
    let nlist = ids.len();
    w.bytes(INVLISTS_ARRAY);
    w.u64(nlist as u64);
    w.u64(code_size as u64);
    let sizes: Vec<usize> = ids.iter().map(Vec::len).collect();
    let nonempty = sizes.iter().filter(|&&s| s > 0).count();
    if nonempty > nlist / 2 {
        w.bytes(b"full");
        w.u64(sizes.len() as u64);
        for s in &sizes {
            w.u64(*s as u64);
        }
    } else {
        w.bytes(b"sprs");
        w.u64(2 * nonempty as u64);
        for (l, s) in sizes.iter().enumerate().filter(|(_, s)| **s > 0) {
            w.u64(l as u64);
            w.u64(*s as u64);
        }
    }
    for (l, list_ids) in ids.iter().enumerate() {
        if !list_ids.is_empty() {
            w.bytes(codes(l));
            w.i64s(list_ids);
        }
    }
}
