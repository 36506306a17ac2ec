# Start script of a Windows runner (the launch template's user data; infra/build.py wraps it in
# <powershell> tags). Same rules as start-runner.sh:
# - every wait is bounded; when one runs out, or any step fails, the instance terminates itself;
# - the token parameter is read once, deleted at once, never printed, and handed to the runner
#   in ACTIONS_RUNNER_INPUT_* variables rather than on a command line;
# - an ephemeral runner terminates its instance when its one job is done;
# - EnableUserDataDebugLogging=true-logs-secrets traces every line and so LOGS THE SECRETS.
# Uses the AWS Tools for PowerShell that AWS's Windows AMIs ship.
# @@SETTINGS@@
$ErrorActionPreference = 'Stop'
if (-not $GhrUserDataDebug) { $GhrUserDataDebug = 'false' }
$RunnerDir = 'C:\actions-runner'
$ImdsUrl = 'http://169.254.169.254'
$TokenWaitSeconds = 300

Start-Transcript -Path 'C:\UserData.log' -Append | Out-Null
if ($GhrUserDataDebug -eq 'true-logs-secrets') {
    Write-Output "WARNING: user-data debug logging is on: the runner's registration secret WILL be logged"
    Set-PSDebug -Trace 2  # shows every assignment's value
}

$script:Step = 'start'
$script:InstanceId = $null
$script:Region = $null
$script:AgentMode = ''
$script:Started = $false
$script:EnableCloudwatch = 'false'

function Write-Log([string]$Message) {
    Write-Output ("{0} start-runner [{1}]: {2}" -f (Get-Date).ToUniversalTime().ToString('s'), $script:Step, $Message)
}

# Runs $Action until it returns something, waiting with exponential backoff; throws after $Limit s.
function Wait-For([scriptblock]$Action, [int]$Limit, [string]$What) {
    $waited = 0
    $delay = 1
    while ($true) {
        try { $value = & $Action } catch { $value = $null }
        if ($value) { return $value }
        if ($waited -ge $Limit) { throw "no $What after $waited s" }
        Start-Sleep -Seconds $delay
        $waited += $delay
        $delay = [Math]::Min($delay * 2, 15)
    }
}

function Stop-Self {
    Write-Log "terminating instance $($script:InstanceId)"
    try {
        Remove-EC2Instance -InstanceId $script:InstanceId -Region $script:Region -Force | Out-Null
    } catch {
        # The launch template's shutdown behaviour is terminate.
        shutdown.exe /s /t 0
    }
}

function Get-Imds([string]$Path) {
    Invoke-RestMethod -Uri "$ImdsUrl/latest/$Path" -TimeoutSec 3 -Headers @{ 'X-aws-ec2-metadata-token' = $script:ImdsToken }
}

function Get-InstanceTag([string]$Key) {
    try { return [string](Get-Imds "meta-data/tags/instance/$Key") } catch { }
    $tags = Get-EC2Tag -Region $script:Region -Filter @(
        @{ Name = 'resource-id'; Values = $script:InstanceId }, @{ Name = 'key'; Values = $Key })
    if ($tags) { return [string]$tags[0].Value }
    return ''
}

function Get-Config([string]$Name) {
    (Get-SSMParameter -Region $script:Region -Name "$script:ConfigPath/$Name").Value
}

function Invoke-PreInstall {
    $script:Step = 'pre-install'
# @@PRE_INSTALL@@
}

function Invoke-PostInstall {
    $script:Step = 'post-install'
# @@POST_INSTALL@@
}

function Install-Runner {
    $script:Step = 'install'
    if (Test-Path "$RunnerDir\config.cmd") { Write-Log 'runner already installed (prebuilt image)'; return }
    New-Item -ItemType Directory -Force -Path $RunnerDir | Out-Null
    $archive = "$RunnerDir\actions-runner.zip"
    $uri = [Uri]$script:BinariesUri
    try {
        Read-S3Object -Region $script:Region -BucketName $uri.Host -Key $uri.AbsolutePath.TrimStart('/') -File $archive | Out-Null
    } catch {
        Write-Log "runner not in the S3 cache ($($script:BinariesUri)); downloading from GitHub"
        $release = Invoke-RestMethod -Uri 'https://api.github.com/repos/actions/runner/releases/latest' -TimeoutSec 30
        $version = $release.tag_name.TrimStart('v')
        Invoke-WebRequest -UseBasicParsing -TimeoutSec 600 -OutFile $archive `
            -Uri "https://github.com/actions/runner/releases/download/v$version/actions-runner-win-x64-$version.zip"
    }
    Expand-Archive -Path $archive -DestinationPath $RunnerDir -Force
    Remove-Item $archive
}

function Start-CloudwatchAgent {
    $script:Step = 'cloudwatch'
    if ($script:EnableCloudwatch -ne 'true') { return }
    $ctl = 'C:\Program Files\Amazon\AmazonCloudWatchAgent\amazon-cloudwatch-agent-ctl.ps1'
    if (-not (Test-Path $ctl)) { Write-Log 'no CloudWatch agent on this image; logs stay on the instance'; return }
    try { & $ctl -a fetch-config -m ec2 -s -c "ssm:$script:ConfigPath/cloudwatch_agent_config_runner" }
    catch { Write-Log 'the CloudWatch agent did not start' }
}

# Reads the token parameter (never printed), then deletes it.
function Get-RunnerSecret {
    $script:Step = 'token'
    $name = "$script:TokenPath/$script:InstanceId"
    $secret = Wait-For { (Get-SSMParameter -Region $script:Region -Name $name -WithDecryption $true).Value } $TokenWaitSeconds "runner configuration in $name"
    Write-Log 'runner configuration received'
    try { Remove-SSMParameter -Region $script:Region -Name $name -Force | Out-Null }
    catch { Write-Log "could not delete $name; scale-down removes stale tokens" }
    return $secret
}

function Invoke-Runner([string]$Script, [string[]]$Arguments) {
    Push-Location $RunnerDir
    try {
        & ".\$Script" @Arguments
        if ($LASTEXITCODE -ne 0) { throw "$Script exited with $LASTEXITCODE" }
    } finally { Pop-Location }
}

function Register-Runner([string]$Secret, [string]$Name, [bool]$AsService) {
    $script:Step = 'configure'
    $arguments = @('--unattended', '--name', $Name, '--work', '_work')
    if ($AsService) { $arguments += '--runasservice' }
    $words = @($Secret -split '\s+' | Where-Object { $_ })
    for ($i = 0; $i -lt $words.Count; $i++) {
        # The token goes to the environment, where other users' process listings cannot see it.
        if ($words[$i] -eq '--token') { $env:ACTIONS_RUNNER_INPUT_TOKEN = $words[$i + 1]; $i++ }
        else { $arguments += $words[$i] }
    }
    try { Invoke-Runner 'config.cmd' $arguments } finally { Remove-Item Env:\ACTIONS_RUNNER_INPUT_TOKEN -ErrorAction SilentlyContinue }
}

$failed = $true
try {
    $script:Step = 'imds'
    $script:ImdsToken = Wait-For {
        Invoke-RestMethod -Method Put -Uri "$ImdsUrl/latest/api/token" -TimeoutSec 3 -Headers @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '21600' }
    } 120 'IMDSv2 token'
    $script:InstanceId = [string](Get-Imds 'meta-data/instance-id')
    $script:Region = [string](Get-Imds 'meta-data/placement/region')
    Write-Log "instance $($script:InstanceId) in $($script:Region)"

    $script:Step = 'config'
    $script:ConfigPath = Get-InstanceTag 'ghr:ssm_config_path'
    if (-not $script:ConfigPath) { throw 'tag ghr:ssm_config_path is missing' }
    $namePrefix = Get-InstanceTag 'ghr:runner_name_prefix'
    $script:AgentMode = Get-Config 'agent_mode'
    $jit = Get-Config 'enable_jit_config'
    $script:EnableCloudwatch = Get-Config 'enable_cloudwatch'
    $script:TokenPath = Get-Config 'token_path'
    $script:BinariesUri = Get-Config 'runner_binaries_s3_uri'
    Write-Log "config $($script:ConfigPath): agent_mode=$($script:AgentMode) jit=$jit"

    Invoke-PreInstall
    Install-Runner
    Invoke-PostInstall
    Start-CloudwatchAgent
    $secret = Get-RunnerSecret

    $script:Step = 'run'
    $runnerName = "$namePrefix$($script:InstanceId)"
    if ($script:AgentMode -eq 'ephemeral') {
        $script:Started = $true
        if ($jit -eq 'true') {
            $env:ACTIONS_RUNNER_INPUT_JITCONFIG = $secret
            $secret = $null
            try { Invoke-Runner 'run.cmd' @() } catch { Write-Log $_.Exception.Message }
        } else {
            Register-Runner $secret $runnerName $false
            $secret = $null
            try { Invoke-Runner 'run.cmd' @() } catch { Write-Log $_.Exception.Message }
        }
        Write-Log 'ephemeral runner finished'
    } else {
        Register-Runner $secret $runnerName $true
        $secret = $null
        Write-Log 'runner service started'
    }
    $failed = $false
} catch {
    Write-Log "start failed: $($_.Exception.Message)"
} finally {
    if ($failed -or ($script:AgentMode -eq 'ephemeral' -and $script:Started)) {
        if ($script:EnableCloudwatch -eq 'true') { Start-Sleep -Seconds 10 }
        Stop-Self
    }
    Stop-Transcript | Out-Null
}
