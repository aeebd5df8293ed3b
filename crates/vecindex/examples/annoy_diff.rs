use vecindex::{builder_factory, synth, Config, Vectors};
fn main() -> vecindex::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = a[0].parse().unwrap();
    let metric = a[1].as_str();
    let trees: usize = a[2].parse().unwrap();
    let d = 64;
    let all = synth::clustered(n + 100, d, 200, 5).0;
    let b = &all.as_slice()[..n * d];
    std::fs::write("/tmp/ad/x.f32", bytemuck::cast_slice::<f32, u8>(b)).unwrap();
    let cfg = Config::new()
        .set("d", d)
        .set("n_trees", trees)
        .set("threads", 1)
        .set("metric", metric);
    let idx = builder_factory("annoy", &cfg)?.from_vectors(Vectors::new(b.to_vec(), d)?)?;
    idx.save(std::path::Path::new("/tmp/ad/ours.ann"))?;
    Ok(())
}
