"""GitHub Actions self-hosted runners on EC2: the Lambda functions' library."""
