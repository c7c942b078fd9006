"""What every job shares: settings, the SparkSession factory, tracking setup, data loading, CLI plumbing."""
