# Deploy the packaged template (chalice package + aws cloudformation package) with Terraform.
# Chalice's own `--pkg-format terraform` cannot merge infra/template.yaml and pins Terraform
# below 1.4; CloudFormation through aws_cloudformation_stack has neither limit. See
# docs/DEPLOY.md, 3c: `make package` and `aws cloudformation package` make out/packaged.yaml,
# then `terraform init` and `terraform apply -var artifacts_bucket="$ARTIFACTS" ...`.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "stack_name" {
  description = "CloudFormation stack of the deployment."
  type        = string
  default     = "github-runners-dev"
}

variable "artifacts_bucket" {
  description = "S3 bucket that `aws cloudformation package` uploaded deployment.zip to."
  type        = string
}

variable "packaged_template" {
  description = "Output of `aws cloudformation package` (its CodeUri points at the bucket)."
  type        = string
  default     = "../../out/packaged.yaml"
}

variable "parameters_file" {
  description = "Template parameters, in the {\"Parameters\": {...}} form of infra/params/."
  type        = string
  default     = "../params/dev.sample.json"
}

variable "tags" {
  description = "Tags of every stack resource that takes tags (the module's `tags`). CloudFormation puts stack tags on them; runner instances get theirs from the RunnerEc2Tags parameter."
  type        = map(string)
  default     = {}
}

data "aws_region" "current" {}
data "aws_partition" "current" {}

# The template is larger than the 51,200 bytes CloudFormation accepts inline: it goes via S3,
# under a key that changes with its content so that every change updates the stack.
resource "aws_s3_object" "template" {
  bucket = var.artifacts_bucket
  key    = "github-runners/templates/${filesha256(var.packaged_template)}.yaml"
  source = var.packaged_template
}

resource "aws_cloudformation_stack" "runners" {
  name         = var.stack_name
  template_url = "https://${var.artifacts_bucket}.s3.${data.aws_region.current.name}.${data.aws_partition.current.dns_suffix}/${aws_s3_object.template.key}"
  parameters   = jsondecode(file(var.parameters_file)).Parameters
  # Named IAM roles, and the SAM transform chalice's template relies on.
  capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
  on_failure   = "ROLLBACK"
  tags         = var.tags
}

output "webhook_url" {
  description = "Payload URL of the GitHub App's webhook."
  value       = aws_cloudformation_stack.runners.outputs["WebhookUrl"]
}

output "app_key_parameter" {
  description = "Put the base64 of the App's PEM key here (SecureString) before the first job."
  value       = aws_cloudformation_stack.runners.outputs["GitHubAppKeyParameterName"]
}

output "webhook_secret_parameter" {
  description = "Put the App's webhook secret here (SecureString)."
  value       = aws_cloudformation_stack.runners.outputs["GitHubAppWebhookSecretParameterName"]
}

output "launch_template_name" {
  value = aws_cloudformation_stack.runners.outputs["LaunchTemplateName"]
}

output "dead_letter_queue_url" {
  value = aws_cloudformation_stack.runners.outputs["DeadLetterQueueUrl"]
}
