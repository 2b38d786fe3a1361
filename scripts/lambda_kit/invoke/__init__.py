"""What runs inside the Lambda runtime image for make smoke (standard library, the zip reader)."""
