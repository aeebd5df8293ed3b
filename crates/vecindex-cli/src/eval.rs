//! `vecindex eval`: Torch-RecHub's match_evaluation done right — retrieve top-k for every user with
//! the chosen backend AND exactly, and print both metric rows plus the ANN's recall of the exact
//! result (what the approximation costs).

use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vecindex::eval::{exact_neighbors, recall_against, topk_metrics, TopkMetrics};
use vecindex::io::{self, npy};
use vecindex::{builder_factory, Config, Neighbors};

#[derive(Args)]
pub struct EvalArgs {
    /// Backend: faiss, annoy or milvus.
    pub backend: String,
    /// Backend parameters as key=value, exactly as for `build`.
    pub params: Vec<String>,
    /// User (query) embeddings.
    #[arg(long)]
    pub users: PathBuf,
    /// Item embeddings.
    #[arg(long)]
    pub items: PathBuf,
    /// Held-out interactions: CSV `user,item` (0-based rows; a header line is allowed) or an
    /// integer .npy of shape (n, 2).
    #[arg(long)]
    pub truth: PathBuf,
    /// Cut-offs, e.g. `-k 10,50,100`.
    #[arg(short = 'k', long = "top-k", value_delimiter = ',', required = true)]
    pub k: Vec<usize>,
    /// Optional item ids (.npy int64) to build the index with (results are mapped back to rows).
    #[arg(long)]
    pub item_ids: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Reads (user, item) pairs.
fn read_truth(path: &Path) -> Result<Vec<(usize, usize)>> {
    let src = path.display().to_string();
    let is_npy = path
        .extension()
        .map(|e| e.eq_ignore_ascii_case("npy"))
        .unwrap_or(false);
    if is_npy {
        let a = npy::parse_npy(&io::read_file(path)?, &src)?;
        let npy::NpyData::Int(v) = a.data else {
            bail!("{src}: truth must be an integer array")
        };
        if a.shape.len() != 2 || a.shape[1] != 2 {
            bail!(
                "{src}: truth must have shape (n, 2) of (user, item) rows, got {:?}",
                a.shape
            );
        }
        return v
            .chunks_exact(2)
            .enumerate()
            .map(|(i, p)| {
                if p[0] < 0 || p[1] < 0 {
                    bail!("{src}: row {i} has a negative index");
                }
                Ok((p[0] as usize, p[1] as usize))
            })
            .collect();
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {src}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split(',').map(str::trim);
        let (u, it) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        match (u.parse::<usize>(), it.parse::<usize>()) {
            (Ok(u), Ok(it)) => out.push((u, it)),
            _ if i == 0 => continue, // header
            _ => bail!(
                "{src}:{}: expected `user,item` with 0-based row numbers, got '{line}'",
                i + 1
            ),
        }
    }
    Ok(out)
}

fn to_rows(n: &Neighbors, id_to_row: Option<&HashMap<i64, i64>>) -> Vec<Vec<i64>> {
    (0..n.n_queries)
        .map(|q| {
            n.ids_row(q)
                .iter()
                .map(|&id| match (id, id_to_row) {
                    (-1, _) => -1,
                    (id, Some(m)) => *m.get(&id).unwrap_or(&-1),
                    (id, None) => id,
                })
                .collect()
        })
        .collect()
}

fn metrics_json(m: &TopkMetrics) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for a in &m.at {
        o.insert(format!("recall@{}", a.k), a.recall.into());
        o.insert(format!("ndcg@{}", a.k), a.ndcg.into());
        o.insert(format!("mrr@{}", a.k), a.mrr.into());
        o.insert(format!("precision@{}", a.k), a.precision.into());
        o.insert(format!("hit_rate@{}", a.k), a.hit_rate.into());
        o.insert(format!("pooled_recall@{}", a.k), a.pooled_recall.into());
    }
    o.into()
}

pub fn run(a: EvalArgs) -> Result<()> {
    if a.k.contains(&0) {
        bail!("k must be at least 1");
    }
    let kmax = *a.k.iter().max().expect("required");
    let config = Config::parse(&a.params)?;
    let mut builder = builder_factory(&a.backend, &config)?;
    builder.set_progress(crate::progress::callback());
    let users = crate::input::read_vectors(&a.users, None)?;
    let items = crate::input::read_vectors(&a.items, None)?;
    let pairs = read_truth(&a.truth)?;
    let mut truth: Vec<Vec<i64>> = vec![Vec::new(); users.rows()];
    for (line, &(u, it)) in pairs.iter().enumerate() {
        if u >= users.rows() || it >= items.rows() {
            bail!(
                "{}: interaction {} ({u}, {it}) is out of range: {} users and {} items",
                a.truth.display(),
                line + 1,
                users.rows(),
                items.rows()
            );
        }
        truth[u].push(it as i64);
    }
    let ids = a.item_ids.as_deref().map(io::read_ids).transpose()?;
    let sp = crate::progress::spinner(&format!(
        "building {} index over {} items",
        a.backend,
        items.rows()
    ));
    let indexer = match &ids {
        Some(ids) => builder.from_embeddings_with_ids(items.view(), ids)?,
        None => builder.from_embeddings(items.view())?,
    };
    sp.finish_and_clear();
    let sp = crate::progress::spinner(&format!(
        "retrieving top-{kmax} for {} users (ANN and exact)",
        users.rows()
    ));
    let ann = indexer.query(users.view(), kmax)?;
    let exact = exact_neighbors(items.view(), users.view(), indexer.metric(), kmax)?;
    sp.finish_and_clear();
    let id_to_row: Option<HashMap<i64, i64>> = ids.as_ref().map(|ids| {
        ids.iter()
            .enumerate()
            .map(|(r, &id)| (id, r as i64))
            .collect()
    });
    let ann_rows = to_rows(&ann, id_to_row.as_ref());
    let exact_rows = to_rows(&exact, None);
    let m_ann = topk_metrics(&truth, &ann_rows, &a.k)?;
    let m_exact = topk_metrics(&truth, &exact_rows, &a.k)?;
    // ANN vs exact, both as row numbers.
    let ann_as_rows = Neighbors {
        ids: ann_rows.concat(),
        ..ann.clone()
    };
    let vs: Vec<(usize, f64)> =
        a.k.iter()
            .map(|&k| (k, recall_against(&ann_as_rows, &exact, k)))
            .collect();
    if a.json {
        let mut vsj = serde_json::Map::new();
        for (k, r) in &vs {
            vsj.insert(format!("recall@{k}"), (*r).into());
        }
        let out = serde_json::json!({
            "exact": metrics_json(&m_exact),
            "ann": metrics_json(&m_ann),
            "ann_vs_exact": vsj,
            "users": m_ann.users,
            "users_without_truth": m_ann.users_without_truth,
            "backend": a.backend,
            "metric": indexer.metric().name(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} users evaluated{} | {} items | backend {} ({}) vs exact search",
        m_ann.users,
        if m_ann.users_without_truth > 0 {
            format!(
                " ({} without held-out items left out)",
                m_ann.users_without_truth
            )
        } else {
            String::new()
        },
        items.rows(),
        a.backend,
        indexer.metric()
    );
    println!(
        "{:<6} {:>5} | {:>8} {:>8} {:>8} {:>9} {:>8} {:>13} | {:>12}",
        "", "k", "recall", "ndcg", "mrr", "precision", "hit_rate", "pooled_recall", "ann vs exact"
    );
    for (i, &k) in a.k.iter().enumerate() {
        for (name, m) in [("exact", &m_exact), ("ann", &m_ann)] {
            let x = &m.at[i];
            let vs_col = if name == "ann" {
                format!("{:.4}", vs[i].1)
            } else {
                String::new()
            };
            println!(
                "{:<6} {:>5} | {:>8.4} {:>8.4} {:>8.4} {:>9.4} {:>8.4} {:>13.4} | {:>12}",
                name, k, x.recall, x.ndcg, x.mrr, x.precision, x.hit_rate, x.pooled_recall, vs_col
            );
        }
    }
    Ok(())
}
