"""make deploy: the zip to Lambda (and S3), verified by CodeSha256, without surprises."""
